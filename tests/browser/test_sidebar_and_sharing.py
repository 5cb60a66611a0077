"""The sidebar and sharing in headless Chromium against the real platform (daphne, sockets).

Personas: ``alice`` owns the conversations, ``bob`` is the colleague she shares with; each has
their own browser context, so they are two people with two open tabs.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from chat.models import Conversation, ConversationShare, Role
from chat.selectors import SIDEBAR_PAGE
from tests.conftest import PASSWORD, LiveServer
from tests.factories import add_messages

pytestmark = pytest.mark.django_db(transaction=True)

WAIT_MS = 10_000


def log_in(page: Any, server: LiveServer, username: str) -> None:
    page.goto(server.url + "/")
    assert "/accounts/login/" in page.url, "an anonymous visitor is sent to the login page"
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-button")
    page.wait_for_selector("#composer-input")


@pytest.fixture
def bobs_page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    yield page
    context.close()


def watch_errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def sidebar_ids(page: Any) -> list[str]:
    ids: list[str] = page.locator("#conversation-list > .conversation-item").evaluate_all(
        "items => items.map(item => item.dataset.id)"
    )
    return ids


def open_menu(page: Any, conversation: Conversation) -> None:
    item = page.locator(f'#conversation-list > .conversation-item[data-id="{conversation.id}"]')
    item.scroll_into_view_if_needed()
    item.hover()
    item.locator(".conversation-menu-button").click()
    page.wait_for_selector("#conversation-menu:not([hidden])")


def many_conversations(owner: User, count: int) -> list[Conversation]:
    """``count`` conversations, eight hours apart (40 days for 120), newest first."""
    created = Conversation.objects.bulk_create(
        [Conversation(owner=owner, title=f"Chat number {n:03d}") for n in range(count)]
    )
    now = timezone.now()
    for n, conversation in enumerate(created):
        conversation.updated_at = now - dt.timedelta(hours=8 * n)
    Conversation.objects.bulk_update(created, ["updated_at"])
    return created


def test_sidebar_loads_more_on_scroll_and_pin_moves_to_the_top(page: Any, live_platform: LiveServer, alice: User) -> None:
    errors = watch_errors(page)
    chats = many_conversations(alice, 120)
    log_in(page, live_platform, "alice")

    assert len(sidebar_ids(page)) == SIDEBAR_PAGE
    assert page.locator("#conversation-list .conversation-group").first.inner_text() == "Today"

    # Scroll to the end until every page has arrived: more than the first page, no duplicates.
    nav = page.locator("#conversation-nav")
    for _attempt in range(20):
        nav.evaluate("nav => { nav.scrollTop = nav.scrollHeight; }")
        page.wait_for_timeout(250)
        if len(sidebar_ids(page)) == 120:
            break
    ids = sidebar_ids(page)
    assert len(ids) == 120
    assert len(set(ids)) == 120
    assert ids == [str(c.id) for c in chats], "newest first, as the server orders them"
    assert page.locator("#conversation-list-more").is_hidden(), "no more pages to load"
    groups = page.locator("#conversation-list .conversation-group").all_inner_texts()
    assert groups[:4] == ["Today", "Yesterday", "Previous 7 days", "Previous 30 days"]

    # Pin one from far down the list: it goes to the top, under "Pinned".
    target = chats[90]
    open_menu(page, target)
    page.locator('#conversation-menu [data-action="pin"]').click()
    page.wait_for_function(
        "id => document.querySelector('#conversation-list > .conversation-item').dataset.id === id",
        arg=str(target.id),
        timeout=WAIT_MS,
    )
    first_heading = page.locator("#conversation-list > li").first
    assert first_heading.inner_text() == "Pinned"
    target.refresh_from_db()
    assert target.pinned is True
    assert sidebar_ids(page).count(str(target.id)) == 1

    # Keyboard: the menu opens from its button and Escape closes it, focus back on the button.
    button = page.locator(f'.conversation-item[data-id="{target.id}"] .conversation-menu-button')
    button.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#conversation-menu:not([hidden])")
    assert page.evaluate("document.activeElement.dataset.action") == "rename", page.evaluate("document.activeElement.outerHTML.slice(0, 300) + ' ' + document.getElementById('conversation-menu').outerHTML.slice(0,200)")
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.dataset.action") == "unpin"
    page.keyboard.press("Escape")
    page.wait_for_selector("#conversation-menu", state="hidden")
    assert page.evaluate("document.activeElement.classList.contains('conversation-menu-button')")

    # After a reload the server agrees.
    page.reload()
    page.wait_for_selector("#conversation-list > .conversation-item")
    assert sidebar_ids(page)[0] == str(target.id)

    # Search: live results while typing, the full page on Enter.
    page.fill("#sidebar-search-input", "number 090")
    page.wait_for_selector("#sidebar-search-results:not([hidden])", timeout=WAIT_MS)
    hits = page.locator("#sidebar-search-list .search-result")
    assert hits.count() == 1
    assert hits.first.get_attribute("href", timeout=WAIT_MS).startswith(f"/c/{target.id}/")
    assert hits.first.locator(".search-result-title").inner_text() == "Chat number 090"
    page.press("#sidebar-search-input", "Enter")
    page.wait_for_url(f"{live_platform.url}/search/?q=number+090", timeout=WAIT_MS)
    assert not errors, errors


def test_alice_shares_through_the_dialog_and_bobs_open_page_shows_it(
    page: Any, bobs_page: Any, live_platform: LiveServer, alice: User, bob: User
) -> None:
    errors = watch_errors(page) + watch_errors(bobs_page)
    conversation = Conversation.objects.create(owner=alice, title="Lighthouse <b>budget</b>")
    add_messages(conversation, (Role.USER, "How many bulbs?"), (Role.ASSISTANT, "About **forty** a year."))
    log_in(bobs_page, live_platform, "bob")
    assert bobs_page.locator("#sidebar-shared").is_hidden()
    log_in(page, live_platform, "alice")

    open_menu(page, conversation)
    page.locator('#conversation-menu [data-action="share"]').click()
    dialog = page.locator("#share-dialog")
    dialog.wait_for(state="visible")
    assert page.locator("#share-dialog-subject").inner_text() == "“Lighthouse <b>budget</b>”"
    page.wait_for_selector("#share-username:not([disabled])")

    # An unknown name: the server's sentence, inline.
    page.fill("#share-username", "nobody")
    page.click("#share-add-button")
    page.wait_for_selector("#share-dialog-error:not([hidden])")
    assert page.locator("#share-dialog-error").inner_text() == "There is no active user called “nobody”."

    page.fill("#share-username", "bob")
    page.select_option("#share-permission", "read")
    page.click("#share-add-button")
    page.wait_for_selector('#share-people .share-row:has-text("bob")', timeout=WAIT_MS)
    assert page.locator("#share-dialog-error").is_hidden()
    share = ConversationShare.objects.get(conversation=conversation)
    assert (share.user_id, share.permission) == (bob.pk, "read")

    # Bob's open page hears of it without a reload: "Shared with me", and a toast.
    shared = bobs_page.locator(f'#shared-list .conversation-item[data-id="{conversation.id}"]')
    shared.wait_for(timeout=WAIT_MS)
    assert shared.locator(".conversation-title").inner_text() == "Lighthouse <b>budget</b>"
    assert bobs_page.locator("#sidebar-shared").is_visible()
    assert bobs_page.locator(".toast", has_text="alice shared “Lighthouse <b>budget</b>” with you.").count() == 1

    # A snapshot link, shown once, that Bob can open and continue in his own copy.
    page.click("#share-link-create")
    page.wait_for_selector("#share-new-link:not([hidden])")
    url = page.input_value("#share-link-url")
    assert re.fullmatch(re.escape(live_platform.url) + r"/s/[\w-]+\.[\w-]+/", url), url
    assert page.locator("#share-links .share-row").count() == 1
    page.click("#share-dialog-close")
    dialog.wait_for(state="hidden")

    bobs_page.goto(url)
    bobs_page.wait_for_selector("#shared-messages strong")
    assert bobs_page.locator("#shared-messages strong").inner_text() == "forty"
    assert "Shared by alice on" in bobs_page.locator(".share-banner").inner_text()
    bobs_page.click("#share-fork-button")
    bobs_page.wait_for_selector("#composer-input")
    copy = Conversation.objects.get(owner=bob)
    assert bobs_page.url == f"{live_platform.url}/c/{copy.id}/"
    assert bobs_page.locator('.message[data-role="assistant"] .message-body strong').inner_text() == "forty"

    # Revoked: the list says so, and the link answers 410.
    open_menu(page, conversation)
    page.locator('#conversation-menu [data-action="share"]').click()
    page.locator("#share-links .share-link-revoke").click()
    page.wait_for_selector("#share-links .share-badge-revoked")
    assert bobs_page.goto(url).status == 410
    assert bobs_page.locator(".error-title").inner_text() == "This link was revoked"
    assert not errors, errors


def test_alice_deletes_a_chat_bob_has_open_and_his_tab_leaves(
    page: Any, bobs_page: Any, live_platform: LiveServer, alice: User, bob: User
) -> None:
    errors = watch_errors(page) + watch_errors(bobs_page)
    conversation = Conversation.objects.create(owner=alice, title="Quarterly numbers")
    add_messages(conversation, (Role.USER, "Summarise Q3"), (Role.ASSISTANT, "Revenue grew."))
    # Straight to the table: the service's after-commit broadcast cannot run beside Playwright's loop.
    ConversationShare.objects.create(conversation=conversation, user=bob, permission="read", shared_by=alice)

    log_in(bobs_page, live_platform, "bob")
    bobs_page.goto(f"{live_platform.url}/c/{conversation.id}/")
    bobs_page.wait_for_selector('.message[data-role="assistant"]')
    bobs_page.wait_for_timeout(500)  # the socket is open
    log_in(page, live_platform, "alice")

    open_menu(page, conversation)
    page.locator('#conversation-menu [data-action="delete"]').click()
    page.wait_for_selector("#confirm-dialog[open]")
    assert "also for everyone it is shared with" in page.locator("#confirm-dialog-text").inner_text()
    page.click("#confirm-dialog-confirm")
    page.wait_for_selector(f'.conversation-item[data-id="{conversation.id}"]', state="detached")
    assert not Conversation.objects.filter(pk=conversation.pk).exists()

    # Bob's tab is told, then leaves for the home page.
    bobs_page.wait_for_selector(".toast", timeout=WAIT_MS)
    assert "deleted" in bobs_page.locator(".toast").first.inner_text().lower()
    bobs_page.wait_for_url(f"{live_platform.url}/", timeout=WAIT_MS)
    assert bobs_page.locator(f'.conversation-item[data-id="{conversation.id}"]').count() == 0
    assert not errors, errors
