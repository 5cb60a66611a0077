"""The browser's JSON and form endpoints with hostile input: a 400 with a message, never a 500.

Run against PostgreSQL too (CI does): it cannot store unpaired surrogates or NULs, so a body
that got through to the database would be a 500 there and pass unnoticed on SQLite.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat.models import Conversation
from chat.services import conversation_create
from models_admin.models import LLMModel

pytestmark = pytest.mark.django_db

SURROGATE = "The request contains an unpaired surrogate (such as \\ud800), which is not a character and cannot be stored."
NUL = "The request contains a NUL character (\\u0000), which cannot be stored."
TOO_DEEP = "The request is nested too deeply (at most 32 levels)."


@pytest.fixture
def alices_chat(alice: AbstractUser, smollm: LLMModel) -> Conversation:
    return conversation_create(owner=alice, title="Plans")


@pytest.fixture
def browser(alice: AbstractUser) -> Client:
    client = Client()
    client.force_login(alice)
    return client


def post(client: Client, url: str, raw: bytes | str) -> tuple[int, Any]:
    response = client.post(url, data=raw, content_type="application/json")
    assert response["Content-Type"] == "application/json", response.content[:200]
    return response.status_code, response.json()


HOSTILE_BODIES = [
    (b"[" * 100_000 + b"]" * 100_000, TOO_DEEP),
    (b'{"title": ' + b"[" * 100_000, TOO_DEEP),
    (b'{"title": "\\ud800"}', SURROGATE),
    (b'{"title": "ok", "model": "\\udfff"}', SURROGATE),
    (b'{"\\ud800": "x", "title": "ok"}', SURROGATE),
    (b'{"title": "\xed\xa0\x80"}', "The request is not valid UTF-8 text."),
    (b'{"title": "a\\u0000b", "model": "a\\u0000b"}', NUL),
    (b'{"title": "x", "model": NaN}', "The request contains NaN, which is not a JSON number."),
    (b'{"title": 1e999}', "The request contains a number that is too large."),
    (b'{"title": ', "The request is malformed: not valid JSON (line 1, column 11)."),
    (b"\xff", "The request is not valid UTF-8 text."),
    (b'["title"]', "The request is malformed."),
]


@pytest.mark.parametrize(("raw", "message"), HOSTILE_BODIES, ids=[repr(r[:24]) for r, _ in HOSTILE_BODIES])
def test_rename_refuses_hostile_json_with_a_400_and_a_message(
    browser: Client, alices_chat: Conversation, raw: bytes, message: str
) -> None:
    assert post(browser, f"/c/{alices_chat.id}/rename/", raw) == (400, {"error": message, "code": "malformed"})
    alices_chat.refresh_from_db()
    assert alices_chat.title == "Plans"


@pytest.mark.parametrize(("raw", "message"), HOSTILE_BODIES, ids=[repr(r[:24]) for r, _ in HOSTILE_BODIES])
def test_create_refuses_hostile_json_with_a_400_and_a_message(browser: Client, alice: AbstractUser, raw: bytes, message: str) -> None:
    assert post(browser, "/c/new/", raw) == (400, {"error": message, "code": "malformed"})
    assert not Conversation.objects.filter(owner=alice).exists()


def test_a_body_over_the_limit_is_refused(browser: Client, alices_chat: Conversation, settings: Any) -> None:
    settings.MAX_MESSAGE_CHARS = 10  # 10 * 4 + 4096 bytes
    status, body = post(browser, f"/c/{alices_chat.id}/rename/", json.dumps({"title": "x" * 4200}))
    assert (status, body) == (400, {"error": "The request is too large (at most 4136 bytes).", "code": "malformed"})
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100  # Django's own limit, MAX_REQUEST_BYTES
    status, body = post(browser, f"/c/{alices_chat.id}/rename/", json.dumps({"title": "x" * 200}))
    assert (status, body) == (400, {"error": "The request is too large (at most 4136 bytes).", "code": "malformed"})


def test_good_requests_still_work(browser: Client, alices_chat: Conversation) -> None:
    assert post(browser, f"/c/{alices_chat.id}/rename/", '{"title": "Caf\\u00e9 \\ud83d\\ude00"}') == (
        200,
        {"id": str(alices_chat.id), "title": "Café 😀"},
    )
    status, body = post(browser, "/c/new/", b"")
    assert status == 201 and body["url"].startswith("/c/")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    title=st.text(st.characters(codec=None, exclude_categories=()), max_size=30),
    ascii_only=st.booleans(),
)
def test_any_title_is_stored_or_refused_never_a_500(browser: Client, alices_chat: Conversation, title: str, ascii_only: bool) -> None:
    raw = json.dumps({"title": title}, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    response = browser.post(f"/c/{alices_chat.id}/rename/", data=raw, content_type="application/json")
    assert response.status_code in (200, 400), response.content[:300]
    assert isinstance(response.json().get("title" if response.status_code == 200 else "error"), str)


# ---- Forms: the admin pages take form fields, which Django decodes with replacement characters


@pytest.fixture
def admin_browser(admin_user: AbstractUser) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.mark.parametrize("value", ["%ED%A0%80", "%00", "a%00b", "%FF%FE", "%C0%80"])
def test_form_fields_with_surrogate_or_nul_bytes_are_no_500(admin_browser: Client, smollm: LLMModel, value: str) -> None:
    posts = {
        "/admin/models/pull/": f"source={value}&model_name={value}",
        "/admin/models/estimate/": f"source={value}&context_length=4096",
        f"/admin/models/{smollm.pk}/copy/": f"destination={value}",
        f"/admin/models/{smollm.pk}/access/": f"access={value}&users={value}",
        "/admin/models/create/": f"name={value}&base={value}&system={value}&stop={value}",
        "/admin/models/endpoints/": f"url={value}&api_key={value}",
        "/admin/models/99999999999999999999999/copy/": f"destination={value}",
    }
    for url, form in posts.items():
        response = admin_browser.post(url, data=form, content_type="application/x-www-form-urlencoded")
        assert response.status_code < 500, (url, response.status_code)
    for query in (f"base={value}", "base=%C2%B2", "base=99999999999999999999999999", "base=-1"):
        assert admin_browser.get(f"/admin/models/create/?{query}").status_code == 200, query
