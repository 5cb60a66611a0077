"""The language follows the browser, can be chosen per person (stored with the account), and
reaches the sockets; numbers follow it too."""

from __future__ import annotations

import json

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.test import Client
from django.utils import translation

from accounts.selectors import language_of
from inference.fit import format_bytes
from platform.asgi import application
from tests.chat.helpers import session_cookie
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

COOKIE = settings.LANGUAGE_COOKIE_NAME


def html_lang(response: object) -> str:
    text = response.content.decode()  # type: ignore[attr-defined]
    start = text.index('<html lang="') + len('<html lang="')
    return text[start : text.index('"', start)]


def test_the_sign_in_page_follows_the_browser() -> None:
    for header, lang in [("de-DE,de;q=0.9", "de"), ("zh-CN,zh;q=0.9", "zh-hans"), ("fr", "fr"), ("es-MX", "es"), ("ja", "en")]:
        response = Client(headers={"accept-language": header}).get("/accounts/login/")
        assert response.status_code == 200
        assert html_lang(response) == lang, header


def test_a_visitor_chooses_a_language_and_the_cookie_keeps_it() -> None:
    client = Client(headers={"accept-language": "en"})
    response = client.post("/settings/language/", {"language": "fr", "next": "/accounts/login/"})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert response.cookies[COOKIE].value == "fr"
    page = client.get("/accounts/login/")
    assert html_lang(page) == "fr"
    with translation.override("fr"):
        assert translation.gettext("Sign in") in page.content.decode()


@pytest.mark.parametrize("bad", ["xx", "en-GB-x-evil", "<script>", ""])
def test_an_unknown_language_or_an_off_site_next_is_refused(bad: str) -> None:
    client = Client()
    if bad:
        response = client.post("/settings/language/", {"language": bad})
        assert response.status_code == 400
        assert COOKIE not in response.cookies
    response = client.post("/settings/language/", {"language": "de", "next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == "/"


def test_the_switcher_needs_a_post() -> None:
    assert Client().get("/settings/language/?language=de").status_code == 405


def test_a_persons_choice_is_stored_and_wins_over_the_browser_after_signing_in(alice: AbstractUser) -> None:
    client = Client(headers={"accept-language": "en"})
    client.force_login(alice)
    client.post("/settings/language/", {"language": "zh-hans", "next": "/settings/keys/"})
    assert language_of(alice) == "zh-hans"

    elsewhere = Client(headers={"accept-language": "de"})  # another browser, German
    response = elsewhere.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    page = elsewhere.get("/settings/keys/")
    assert html_lang(page) == "zh-hans"
    # The cookie follows, so the sockets and the sign-in page after signing out agree.
    assert page.cookies[COOKIE].value == "zh-hans"

    # Back to following the browser: an empty choice.
    elsewhere.post("/settings/language/", {"language": "", "next": "/"})
    assert language_of(alice) == ""
    elsewhere.cookies.pop(COOKIE, None)
    assert html_lang(elsewhere.get("/settings/keys/")) == "de"


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_socket_errors_are_in_the_pages_language(alice: AbstractUser) -> None:
    headers = [
        (b"origin", b"http://127.0.0.1"),
        (b"host", b"127.0.0.1"),
        (b"cookie", f"sessionid={await session_cookie(alice)}; {COOKIE}=de".encode()),
        (b"accept-language", b"fr"),
    ]
    communicator = WebsocketCommunicator(application, "/ws/home/", headers=headers)
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    await communicator.send_to(text_data="[1, 2]")
    frame = json.loads(await communicator.receive_from(timeout=10))
    with translation.override("de"):
        expected = translation.gettext('A request must be a JSON object, such as {"type": "..."}.')
    assert frame == {"type": "error", "error": expected}
    assert expected.startswith("A request") is False  # it is German, not the English source
    await communicator.disconnect()


def test_sizes_use_the_languages_decimal_separator() -> None:
    size = int(6.2 * 1024**3)
    with translation.override("en"):
        assert format_bytes(size) == "6.2 GiB"
    with translation.override("de"):
        assert format_bytes(size) == "6,2 GiB"
    with translation.override("fr"):
        assert format_bytes(size) == "6,2 GiB"
