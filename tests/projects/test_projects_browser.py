"""A person in headless Chromium: open a project, press "New conversation", land in it."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from django.contrib.auth.models import User
from django.db import connection

from chat.models import Conversation
from models_admin.models import LLMModel
from projects.models import ProjectRole
from projects.services import member_add, project_create
from tests.browser.conftest import browser, page  # noqa: F401  (the shared Chromium fixtures)
from tests.conftest import PASSWORD, LiveServer

pytestmark = pytest.mark.django_db(transaction=True)

T = TypeVar("T")


def off_loop(service: Callable[..., T], **kwargs: Any) -> T:
    """Run a service in another thread: Playwright's event loop runs in this one, and the
    services' after-commit socket notices (async_to_sync) refuse to run beside a loop."""
    def run() -> T:
        try:
            return service(**kwargs)
        finally:
            connection.close()  # this thread's own connection goes back to the pool

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def log_in(page: Any, server: LiveServer, username: str, then: str) -> None:  # noqa: F811
    page.goto(server.url + then)
    assert "/accounts/login/" in page.url
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-button")
    page.wait_for_url(server.url + then)


def test_editor_starts_a_conversation_from_the_project_page(
    page: Any, live_platform: LiveServer, alice: User, bob: User, charlie: User, smollm: LLMModel  # noqa: F811
) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    project = off_loop(project_create, creator=alice, name="<script>window.pwned=1</script> Launch", instructions="Be brief.")
    off_loop(member_add, project=project, user=bob, role=ProjectRole.EDITOR)
    off_loop(member_add, project=project, user=charlie, role=ProjectRole.VIEWER)

    log_in(page, live_platform, "bob", f"/p/{project.id}/")
    assert page.locator("#project-name").inner_text().startswith("<script>window.pwned=1</script> Launch")
    assert page.evaluate("window.pwned") is None
    page.click("#project-instructions summary")
    assert page.locator("#project-instructions .pj-pre").inner_text() == "Be brief."

    page.click("#new-conversation")
    page.wait_for_url(f"{live_platform.url}/c/**")
    conversation = Conversation.objects.get()
    assert page.url == f"{live_platform.url}/c/{conversation.id}/"
    assert conversation.project_id == project.id and conversation.owner_id == bob.pk
    assert errors == []


def test_viewer_has_no_new_conversation_button(
    page: Any, live_platform: LiveServer, alice: User, charlie: User, smollm: LLMModel  # noqa: F811
) -> None:
    project = off_loop(project_create, creator=alice, name="Launch")
    off_loop(member_add, project=project, user=charlie, role=ProjectRole.VIEWER)
    log_in(page, live_platform, "charlie", f"/p/{project.id}/")
    assert page.locator("#new-conversation").count() == 0
    assert page.locator("#project-leave").is_visible()
