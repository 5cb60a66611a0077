"""Live together: alice and bob write in a project conversation while charlie, a viewer,
reads along, each in their own browser; then alice deletes it and the others are sent home."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User

from chat.models import Conversation, Message, Role
from models_admin.models import LLMModel
from projects.models import Membership, Project, ProjectRole
from tests.browser.test_chat_in_browser import log_in
from tests.conftest import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)

# Every text change of the newest answer's body, as lengths: proof that it streamed in.
WATCH_ANSWER = """() => {
  window.__lengths = [];
  new MutationObserver(() => {
    const answers = document.querySelectorAll('.message[data-role="assistant"] .message-body');
    const last = answers[answers.length - 1];
    if (last) window.__lengths.push(last.innerText.length);
  }).observe(document.getElementById('messages'), {childList: true, subtree: true, characterData: true});
}"""


@pytest.fixture
def people(browser: Any) -> Iterator[Any]:
    """A browser context per person: separate cookies, separate sockets."""
    contexts: list[Any] = []

    def open_as(username: str, server: LiveServer, url: str) -> Any:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        contexts.append(context)
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        log_in(page, server, username)
        page.goto(url)
        page.wait_for_selector("#messages")
        return page

    yield open_as
    for context in contexts:
        context.close()


def test_colleagues_see_each_others_messages_live_and_a_viewer_only_reads(
    people: Any,
    live_platform: LiveServer,
    alice: User,
    bob: User,
    charlie: User,
    smollm: LLMModel,
) -> None:
    LLMModel.objects.filter(pk=smollm.pk).update(max_tokens=32)
    project = Project.objects.create(name="Lighthouse <b>plan</b>", created_by=alice)
    for person, role in ((alice, ProjectRole.OWNER), (bob, ProjectRole.EDITOR), (charlie, ProjectRole.VIEWER)):
        Membership.objects.create(project=project, user=person, role=role)
    conversation = Conversation.objects.create(owner=alice, project=project, model=smollm, title="Keeper rota")
    url = f"{live_platform.url}/c/{conversation.id}/"

    alice_page = people("alice", live_platform, url)
    bob_page = people("bob", live_platform, url)
    charlie_page = people("charlie", live_platform, url)

    # The project shows in the header, as text (its name has markup in it).
    for page in (alice_page, bob_page, charlie_page):
        crumb = page.locator("#project-crumb")
        assert crumb.is_visible()
        assert crumb.inner_text().strip() == "Lighthouse <b>plan</b>"
        assert crumb.get_attribute("href") == f"/p/{project.id}/"
    # Only the owner may share; only writers get a composer.
    assert alice_page.locator("#share-button").is_visible()
    assert bob_page.locator("#share-button").is_hidden()
    assert bob_page.locator("#composer-input").is_enabled()
    note = charlie_page.locator("#read-only-note")
    assert note.is_visible()
    assert note.inner_text().strip() == "You can read this conversation but not write in it."
    assert charlie_page.locator("#composer").is_hidden()
    assert charlie_page.locator("#composer-input").is_disabled()

    alice_page.evaluate(WATCH_ANSWER)
    bob_page.fill("#composer-input", "Describe a lighthouse at night.")
    bob_page.keyboard.press("Enter")

    # alice sees bob's message, signed, and his answer as it streams ("Started by bob").
    question = alice_page.locator('.message[data-role="user"]')
    question.wait_for()
    assert question.locator(".message-body").inner_text() == "Describe a lighthouse at night."
    assert question.locator(".message-author").inner_text() == "bob"
    alice_page.wait_for_selector('.message[data-role="assistant"][data-status="streaming"]')
    assert alice_page.locator(".message-started-by").inner_text() == "Started by bob"
    # One answer at a time, for everyone: alice gets Stop, not Send; charlie neither.
    assert alice_page.locator("#stop-button").is_visible()
    assert alice_page.locator("#send-button").is_hidden()
    assert charlie_page.locator("#stop-button").is_hidden()

    done = '.message[data-role="assistant"]:not([data-status="streaming"])'
    for page in (alice_page, bob_page, charlie_page):
        page.wait_for_selector(done, timeout=60_000)
    answer = Message.objects.get(role=Role.ASSISTANT)
    shown = [p.locator('.message[data-role="assistant"] .message-body').inner_text() for p in (alice_page, bob_page, charlie_page)]
    assert shown[0] == shown[1] == shown[2]
    assert shown[0].strip() and answer.content.strip()
    lengths = alice_page.evaluate("window.__lengths")
    growth = sorted(set(lengths))
    assert len(growth) >= 3 and growth[0] < growth[-1] == len(shown[0]), lengths
    assert alice_page.locator(".message-started-by").is_hidden()

    # The viewer reads along but gets no way to change anything.
    assert charlie_page.locator('.message[data-role="user"] .message-author').inner_text() == "bob"
    for hidden in (".message-edit-button", ".message-regenerate", ".message-continue", "#stop-button"):
        assert charlie_page.locator(hidden).is_hidden(), hidden
    # The writers may: alice may edit bob's message and regenerate his answer.
    assert alice_page.locator(".message-regenerate").is_visible()
    assert alice_page.locator('.message[data-role="user"] .message-edit-button').count() == 1

    # alice deletes it: bob and charlie are told and taken home, without reconnecting to it.
    # Through alice's browser session, but not from inside her page: the page itself leaves the
    # deleted chat as soon as its socket hears of it, which would cut an in-page fetch short.
    token = next(c["value"] for c in alice_page.context.cookies() if c["name"] == "csrftoken")
    response = alice_page.request.post(
        f"{live_platform.url}/c/{conversation.id}/delete/",
        headers={"X-CSRFToken": token, "Referer": f"{live_platform.url}/", "Origin": live_platform.url},
    )
    status = response.status
    assert status == 204
    for page in (bob_page, charlie_page):
        page.wait_for_url(f"{live_platform.url}/", timeout=10_000)
        page.wait_for_selector('.toast >> text="This conversation was deleted."')
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    for page in (alice_page, bob_page, charlie_page):
        assert not page.errors, page.errors
