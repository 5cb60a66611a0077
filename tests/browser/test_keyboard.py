"""alice in headless Chromium, with the keyboard only: Enter sends, Escape stops, the Stop
button is in the Tab order, Alt+ArrowUp/Alt+ArrowDown and the arrow keys move between
conversations, a conversation's menu opens with Space and closes with Escape, focus coming back."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser
from django.utils import timezone

from chat.models import Conversation, Message, MessageStatus, Role
from models_admin.models import LLMModel
from tests.browser.test_chat_in_browser import log_in
from tests.conftest import LiveServer
from tests.factories import add_messages

pytestmark = pytest.mark.django_db(transaction=True)

STREAMING = '.message[data-role="assistant"][data-status="streaming"]'
STOPPED = '.message[data-role="assistant"][data-status="stopped"]'
LONG_PROMPT = "Write a very long story about a lighthouse keeper and the sea."


def active_element(page: Any) -> str:
    value: str = page.evaluate(
        "() => { const el = document.activeElement; return el.id || el.dataset.action || el.className; }"
    )
    return value


def test_the_whole_chat_works_from_the_keyboard(
    page: Any, live_platform: LiveServer, alice: AbstractUser, smollm: LLMModel
) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    older = Conversation.objects.create(owner=alice, model=smollm, title="Older chat")
    add_messages(older, (Role.USER, "Hello"), (Role.ASSISTANT, "Hi there."))
    Conversation.objects.filter(pk=older.pk).update(updated_at=timezone.now() - dt.timedelta(hours=1))
    log_in(page, live_platform, "alice")

    # Enter sends; while the answer is written, Escape stops it.
    page.fill("#composer-input", LONG_PROMPT)
    page.keyboard.press("Enter")
    page.wait_for_selector(STREAMING, timeout=30_000)
    assert active_element(page) == "composer-input"
    page.wait_for_function(
        "s => document.querySelector(s).querySelector('.message-body').textContent.length > 0", arg=STREAMING
    )
    page.keyboard.press("Escape")
    page.wait_for_selector(STOPPED, timeout=10_000)
    assert Message.objects.get(role=Role.ASSISTANT, conversation__title__startswith="Write").status == MessageStatus.STOPPED
    page.wait_for_selector("#send-button", state="visible")
    assert active_element(page) == "composer-input", "the keyboard stays in the composer"
    new = Conversation.objects.exclude(pk=older.pk).get()
    assert page.url == f"{live_platform.url}/c/{new.id}/"

    # The Stop button is in the Tab order and works with the keyboard; then focus goes back.
    page.fill("#composer-input", LONG_PROMPT)
    page.keyboard.press("Enter")
    page.wait_for_selector(STREAMING, timeout=30_000)
    page.keyboard.press("Tab")
    assert active_element(page) == "stop-button"
    page.keyboard.press("Space")
    page.wait_for_function(
        "s => document.querySelectorAll(s).length === 2", arg=STOPPED, timeout=10_000
    )
    assert active_element(page) == "composer-input", "the hidden Stop button handed the keyboard back"

    # Alt+ArrowDown opens the conversation below the open one, Alt+ArrowUp the one above.
    page.keyboard.press("Alt+ArrowDown")
    page.wait_for_url(f"{live_platform.url}/c/{older.id}/")
    page.wait_for_selector('.message[data-role="assistant"] .message-body p')
    page.wait_for_function("() => !document.getElementById('composer-input').readOnly")
    page.keyboard.press("Alt+ArrowUp")
    page.wait_for_url(f"{live_platform.url}/c/{new.id}/")
    page.wait_for_function("() => !document.getElementById('composer-input').readOnly")

    # In the list, the arrow keys move between conversations; Enter opens one.
    first = page.locator("#conversation-list > .conversation-item .conversation-link").first
    first.focus()
    assert first.get_attribute("aria-current") == "page"
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.closest('.conversation-item').dataset.id") == str(older.id)
    page.keyboard.press("ArrowUp")
    assert page.evaluate("document.activeElement.closest('.conversation-item').dataset.id") == str(new.id)

    # Tab reaches the item's menu button; Space opens the menu on its first entry, the arrows
    # move in it, Escape closes it and the keyboard is back on the button.
    page.keyboard.press("Tab")
    assert "conversation-menu-button" in active_element(page)
    page.keyboard.press("Space")
    page.wait_for_selector("#conversation-menu:not([hidden])")
    assert active_element(page) == "rename"
    page.keyboard.press("ArrowDown")
    assert active_element(page) == "pin"
    page.keyboard.press("Escape")
    page.wait_for_selector("#conversation-menu", state="hidden")
    assert "conversation-menu-button" in active_element(page)
    assert page.locator(STOPPED).count() == 2, "Escape in the menu stopped nothing else"

    # Enter on a conversation link opens it.
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_platform.url}/c/{older.id}/")
    assert not errors, errors
