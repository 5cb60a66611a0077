"""axe-core in headless Chromium over every main screen, as the persona who uses it, in the
light and the dark theme, on a desktop and on a phone: no violation of impact "serious" or
"critical". And the platform is installable: the pages link a manifest Chromium parses cleanly.

axe comes from node_modules (npm's axe-core, installed by the Makefile for the tests) and is
evaluated through the DevTools protocol, which the pages' Content-Security-Policy does not
govern, so the pages run under their real policy.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client

from accounts.services import api_key_create
from chat.models import Conversation, Role
from directory.services import group_create, group_members_add
from models_admin.models import LLMModel
from projects.services import project_create
from tests.conftest import ROOT, LiveServer
from tests.factories import add_messages
from tests.quotas.helpers import seed_usage

pytestmark = pytest.mark.django_db(transaction=True)

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
FAILING_IMPACTS = ("serious", "critical")
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
THEMES = ("light", "dark")


@dataclass(frozen=True)
class Screen:
    path: str  # "{conversation}" and "{group}" are filled in from the test's data
    persona: str | None  # None: an anonymous visitor
    ready: str  # a selector that is there once the page has finished drawing itself


SCREENS = {
    "chat-empty": Screen("/", "alice", "#composer-input"),
    "chat-answer": Screen("/c/{conversation}/", "alice", '.message[data-role="assistant"] .message-body p'),
    "api-keys": Screen("/settings/keys/", "alice", "main"),
    "models-admin": Screen("/admin/models/", "admin", "main"),
    "users-admin": Screen("/admin/users/", "admin", "main"),
    "groups-admin": Screen("/admin/groups/", "admin", "main"),
    "group-admin": Screen("/admin/groups/{group}/", "admin", "main"),
    "usage-dashboard": Screen("/admin/usage/", "admin", "main"),
    "audit-log": Screen("/admin/audit/", "admin", "main"),
    "projects-list": Screen("/p/", "alice", "main"),
    "sign-in": Screen("/accounts/login/", None, "#login-button"),
}


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `make test` (or `npm ci`) to install the test's npm packages")
    return AXE.read_text(encoding="utf-8")


def _seed(alice: User, admin_user: User, smollm: LLMModel) -> dict[str, str]:
    conversation = Conversation.objects.create(owner=alice, model=smollm, title="Lighthouses")
    add_messages(
        conversation,
        (Role.USER, "How does a lighthouse lens work?"),
        (Role.ASSISTANT, "A **Fresnel lens** bends the light into a beam.\n\n- rings of prisms\n- one lamp\n\n```python\nprint('beam')\n```"),
    )
    api_key_create(user=alice, name="laptop")
    project_create(creator=alice, name="Harbour", description="Everything about the harbour")
    group = group_create(name="research", by=admin_user, address="127.0.0.1")
    group_members_add(group=group, users=[alice], by=admin_user, address="127.0.0.1")
    seed_usage(alice, tokens=1_000)
    return {"conversation": str(conversation.id), "group": str(group.pk)}


@pytest.fixture
def world(alice: User, admin_user: User, smollm: LLMModel) -> dict[str, str]:
    """Every screen with something on it: a finished answer, a key, a project, a group with a
    member (and the audit entries these write), a day of usage."""

    # In a thread of its own: the services announce changes through the channel layer with
    # async_to_sync, which refuses to run where Playwright's event loop already runs.
    def seed() -> dict[str, str]:
        try:
            return _seed(alice, admin_user, smollm)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(seed).result()


def _session_cookie(server: LiveServer, user: User) -> dict[str, str]:
    client = Client()
    client.force_login(user)
    return {"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value, "url": server.url}


def _format(found: list[tuple[str, dict[str, Any]]]) -> str:
    lines = []
    for variant, violation in found:
        lines.append(f"[{variant}] {violation['id']} ({violation['impact']}): {violation['help']}  {violation['helpUrl']}")
        for node in violation["nodes"]:
            detail = " | ".join(check["message"] for check in node["any"] + node["all"] + node["none"])
            lines.append(f"    {' > '.join(map(str, node['target']))}: {detail}")
    return "\n".join(lines)


def axe_violations(page: Any, axe_source: str) -> list[dict[str, Any]]:
    """axe's violations of a failing impact on the page as it is now."""
    page.evaluate(axe_source)
    result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [v for v in result if v["impact"] in FAILING_IMPACTS]


@pytest.fixture
def contexts(browser: Any) -> Iterator[Any]:
    opened: list[Any] = []

    def new_context(**options: Any) -> Any:
        context = browser.new_context(reduced_motion="reduce", **options)
        opened.append(context)
        return context

    yield new_context
    for context in opened:
        context.close()


@pytest.mark.parametrize("screen_id", SCREENS)
def test_the_screen_has_no_serious_accessibility_violation_in_either_theme_or_size(
    contexts: Any, live_platform: LiveServer, world: dict[str, str], axe_source: str, screen_id: str,
    alice: User, admin_user: User,
) -> None:
    screen = SCREENS[screen_id]
    cookies = []
    if screen.persona is not None:
        cookies = [_session_cookie(live_platform, {"alice": alice, "admin": admin_user}[screen.persona])]
    url = live_platform.url + screen.path.format(**world)
    found: list[tuple[str, dict[str, Any]]] = []
    for size, viewport in VIEWPORTS.items():
        for theme in THEMES:
            context = contexts(viewport=viewport, color_scheme=theme)
            context.add_cookies(cookies)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            response = page.goto(url)
            assert response is not None and response.status == 200, (url, response and response.status, live_platform.logs()[-3000:])
            page.wait_for_selector(screen.ready)
            page.evaluate("document.fonts.ready.then(() => true)")
            assert page.evaluate("document.documentElement.dataset.theme") == theme
            found += [(f"{screen_id} {theme} {size}", v) for v in axe_violations(page, axe_source)]
            assert not errors, errors
            context.close()
    assert not found, "axe found serious or critical violations:\n" + _format(found)


def test_the_check_reports_a_form_field_that_lost_its_label(contexts: Any, live_platform: LiveServer, axe_source: str) -> None:
    page = contexts(viewport=VIEWPORTS["desktop"]).new_page()
    page.goto(live_platform.url + "/accounts/login/")
    assert axe_violations(page, axe_source) == []
    page.evaluate("document.querySelector('label[for=id_username]').remove()")
    found = axe_violations(page, axe_source)
    assert [(v["id"], v["impact"], v["nodes"][0]["target"]) for v in found] == [("label", "critical", ["#id_username"])]


def test_chromium_finds_the_manifest_parses_it_and_its_icons_load(contexts: Any, live_platform: LiveServer) -> None:
    context = contexts(viewport=VIEWPORTS["phone"], is_mobile=True)
    page = context.new_page()
    complaints: list[str] = []
    page.on("console", lambda message: complaints.append(message.text) if message.type in ("error", "warning") else None)
    page.goto(live_platform.url + "/accounts/login/")
    assert page.locator('link[rel="manifest"]').get_attribute("href") == "/manifest.webmanifest"
    devtools = context.new_cdp_session(page)
    manifest = devtools.send("Page.getAppManifest")
    assert manifest["url"] == live_platform.url + "/manifest.webmanifest"
    assert manifest["errors"] == []
    data = json.loads(manifest["data"])
    assert data["start_url"] == "/" and data["display"] == "standalone"
    # The hashed URLs of the collected static files, as a deployment serves them.
    for icon in data["icons"]:
        response = page.request.get(live_platform.url + icon["src"])
        assert response.status == 200 and response.headers["content-type"] == "image/png", icon
        body = response.body()
        assert body[:8] == b"\x89PNG\r\n\x1a\n"
        assert "%dx%d" % struct.unpack(">II", body[16:24]) == icon["sizes"], icon
    # Chromium's own verdict (icons fetched and suitable, start_url in scope...); a Playwright
    # context is a private window, which is never installable.
    errors = [e["errorId"] for e in devtools.send("Page.getInstallabilityErrors")["installabilityErrors"]]
    assert errors == ["in-incognito"], errors
    assert not complaints, complaints  # a Content-Security-Policy refusal would be said here
