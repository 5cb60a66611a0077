"""alice in headless Chromium: regenerate an answer, switch between versions (‹ 1/2 ›), edit
her message into a new branch, and find the version she chose again after a reload."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser

from chat.models import Conversation, Message, Role
from models_admin.models import LLMModel
from tests.browser.test_chat_in_browser import log_in
from tests.conftest import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)

SETTLED = ':not([data-status="streaming"])'


def settled_answer(page: Any) -> Any:
    """The answer in view, once it has finished streaming."""
    locator = page.locator(f'.message[data-role="assistant"]{SETTLED}')
    locator.wait_for(timeout=60_000)
    return locator


def test_regenerate_switch_versions_edit_and_reload_keeps_the_chosen_branch(
    page: Any, live_platform: LiveServer, alice: AbstractUser, smollm: LLMModel
) -> None:
    # Short answers: this test is about the tree, not about the text.
    LLMModel.objects.filter(pk=smollm.pk).update(max_tokens=16)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, live_platform, "alice")

    page.fill("#composer-input", "Name a colour.")
    page.keyboard.press("Enter")
    first_view = settled_answer(page)
    first_text = first_view.locator(".message-body").inner_text()
    first = Message.objects.get(role=Role.ASSISTANT)
    assert first_view.get_attribute("data-id") == str(first.id)
    # Copy is offered on both messages; a single version has no switcher.
    assert page.locator('.message[data-role="user"] .message-copy').count() == 1
    assert page.locator('.message[data-role="assistant"] .message-copy').count() == 1
    assert page.locator(".branch-nav:visible").count() == 0

    # Regenerate: a second answer to the same message, shown in place of the first.
    page.click(".message-regenerate")
    page.wait_for_selector(f'.message[data-role="assistant"]:not([data-id="{first.id}"]){SETTLED}', timeout=60_000)
    assert page.locator('.message[data-role="assistant"]').count() == 1
    nav = page.locator('.message[data-role="assistant"] .branch-nav')
    assert nav.locator(".branch-count").inner_text() == "2/2"
    assert nav.get_attribute("aria-label") == "Version 2 of 2"
    assert nav.locator(".branch-next").is_disabled()
    second = Message.objects.filter(role=Role.ASSISTANT).exclude(pk=first.pk).get()
    assert second.parent_id == first.parent_id

    # ‹ with the keyboard: the first answer again, "1/2".
    nav.locator(".branch-prev").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector(f'.message[data-role="assistant"][data-id="{first.id}"]')
    nav = page.locator('.message[data-role="assistant"] .branch-nav')
    assert nav.locator(".branch-count").inner_text() == "1/2"
    assert page.locator('.message[data-role="assistant"] .message-body').inner_text() == first_text
    assert nav.locator(".branch-prev").is_disabled()

    # Edit the question: a new first message, its own answer, "2/2" on the question.
    user = page.locator('.message[data-role="user"]')
    user.hover()
    user.locator(".message-edit-button").click()
    edit = user.locator(".message-edit-input")
    assert edit.input_value() == "Name a colour."
    edit.fill("Name a fruit.")
    user.locator(".message-edit-save").click()
    page.wait_for_selector('.message[data-role="user"][data-status="complete"] >> text="Name a fruit."')
    settled_answer(page)
    questions = Message.objects.filter(role=Role.USER).order_by("id")
    assert [(q.content, q.parent_id) for q in questions] == [("Name a colour.", None), ("Name a fruit.", None)]
    assert page.locator(".message").count() == 2
    user_nav = page.locator('.message[data-role="user"] .branch-nav')
    assert user_nav.locator(".branch-count").inner_text() == "2/2"
    assert page.locator('.message[data-role="assistant"] .branch-nav').is_hidden()

    # Back to the first question, then to its first answer: that is the branch now chosen...
    user_nav.locator(".branch-prev").click()
    page.wait_for_selector('.message[data-role="user"] .message-body >> text="Name a colour."')
    page.wait_for_selector(f'.message[data-role="assistant"][data-id="{second.id}"]')
    page.locator('.message[data-role="assistant"] .branch-prev').click()
    page.wait_for_selector(f'.message[data-role="assistant"][data-id="{first.id}"]')

    # ...and a reload shows it again, with both switchers where they were.
    page.reload()
    page.wait_for_selector(f'.message[data-role="assistant"][data-id="{first.id}"]')
    assert page.locator('.message[data-role="user"] .message-body').inner_text() == "Name a colour."
    assert page.locator('.message[data-role="user"] .branch-count').inner_text() == "1/2"
    assert page.locator('.message[data-role="assistant"] .branch-count').inner_text() == "1/2"
    assert page.locator('.message[data-role="assistant"] .message-body').inner_text() == first_text
    assert Conversation.objects.get().current_leaf_id == first.id
    assert not errors, errors


def test_cut_off_answer_shows_the_note_and_continue_carries_it_on_in_place(
    page: Any, live_platform: LiveServer, alice: AbstractUser, smollm: LLMModel
) -> None:
    LLMModel.objects.filter(pk=smollm.pk).update(max_tokens=8)
    log_in(page, live_platform, "alice")
    page.fill("#composer-input", "Write a long story about a lighthouse keeper.")
    page.keyboard.press("Enter")
    answer = settled_answer(page)
    stored = Message.objects.get(role=Role.ASSISTANT)
    assert stored.cut_off
    note = answer.locator(".message-cutoff")
    assert note.is_visible()
    assert note.inner_text().strip() == "The answer was cut off at the length limit."
    before = answer.locator(".message-body").inner_text()

    answer.locator(".message-continue").click()
    # The same message grows: no new answer, its text carries on from where it stopped.
    page.wait_for_function(
        "([id, length]) => { const el = document.querySelector(`.message[data-id=\"${id}\"]`);"
        " return el && el.dataset.status !== 'streaming' && el.querySelector('.message-body').innerText.length > length; }",
        arg=[stored.id, len(before)],
        timeout=60_000,
    )
    assert page.locator('.message[data-role="assistant"]').count() == 1
    stored.refresh_from_db()
    assert len(stored.content) > len(before)
    assert Message.objects.filter(role=Role.ASSISTANT).count() == 1
