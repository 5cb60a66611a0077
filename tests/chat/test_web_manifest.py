"""/manifest.webmanifest: what makes the platform installable. Valid JSON of the manifest's
own type, open to anyone (a browser may fetch it without cookies; an account waiting for
approval gets it too), in the visitor's language, and every icon it lists is served as a PNG
of the size it claims."""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

import pytest
from django.http import HttpResponseBase
from django.test import Client

from directory.services import registration_create

pytestmark = pytest.mark.django_db


def body(response: HttpResponseBase) -> bytes:
    """The whole body, also of the static files middleware's asynchronous file responses."""
    if not response.streaming:
        return response.content  # type: ignore[attr-defined]

    async def read() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])  # type: ignore[attr-defined]

    return asyncio.run(read())


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:8]
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_manifest_is_json_of_its_own_type_for_an_anonymous_visitor() -> None:
    response = Client().get("/manifest.webmanifest")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/manifest+json"
    manifest = json.loads(response.content)
    assert manifest["name"] == manifest["short_name"] == "Private LLM"
    assert manifest["start_url"] == manifest["scope"] == "/"
    assert manifest["display"] == "standalone"
    # The light theme's background (app.css --bg), so the splash screen matches the page.
    assert manifest["theme_color"] == manifest["background_color"] == "#ffffff"
    assert manifest["lang"] == "en" and manifest["dir"] == "ltr"


def test_the_manifest_speaks_the_visitors_language() -> None:
    manifest = json.loads(Client().get("/manifest.webmanifest", HTTP_ACCEPT_LANGUAGE="de").content)
    assert manifest["lang"] == "de"


def test_every_icon_it_lists_is_a_png_of_the_stated_size(settings: Any) -> None:
    settings.SERVESTATIC_USE_FINDERS = True  # the tests do not collect the static files first
    client = Client()
    icons = json.loads(client.get("/manifest.webmanifest").content)["icons"]
    assert {(icon["sizes"], icon["purpose"]) for icon in icons} == {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")}
    for icon in icons:
        response = client.get(icon["src"])
        assert response.status_code == 200, icon
        assert response["Content-Type"] == icon["type"] == "image/png"
        width, height = (int(n) for n in icon["sizes"].split("x"))
        assert png_size(body(response)) == (width, height)


def test_every_page_links_the_manifest_and_the_apple_touch_icon(settings: Any) -> None:
    settings.SERVESTATIC_USE_FINDERS = True
    client = Client()
    page = client.get("/accounts/login/").content.decode()
    assert '<link rel="manifest" href="/manifest.webmanifest">' in page
    touch_icon = page.split('<link rel="apple-touch-icon" href="', 1)[1].split('"', 1)[0]
    response = client.get(touch_icon)
    assert response.status_code == 200
    assert png_size(body(response)) == (180, 180)


def test_an_account_waiting_for_approval_still_gets_it(settings: Any) -> None:
    settings.REGISTRATION_OPEN = True
    waiting = registration_create(username="dora", email="dora@example.com", password="correct-horse-battery-staple", address="")
    client = Client()
    client.force_login(waiting)
    assert client.get("/", HTTP_ACCEPT="text/html")["Location"] == "/accounts/waiting/"
    response = client.get("/manifest.webmanifest", HTTP_ACCEPT="*/*")
    assert response.status_code == 200 and response["Content-Type"] == "application/manifest+json"
