"""Search: only what the searcher may read, on SQLite and on PostgreSQL alike.

alice keeps a private conversation; bob may search only what is his, shared with him or in a
project he belongs to; charlie belongs to nothing. The same tests run on both databases (CI
sets DATABASE_URL to PostgreSQL): words are chosen so the full-text match there and the
substring match on SQLite agree.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import AbstractUser
from django.db import connection
from django.test import Client

from chat.models import Conversation, Message, Role
from chat.search import MAX_LIMIT, message_matches, search
from chat.services import share_add, share_remove
from projects.models import Membership, Project, ProjectRole
from tests.factories import add_messages

pytestmark = pytest.mark.django_db


def client_for(user: AbstractUser) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def alices_secret(alice: AbstractUser) -> Conversation:
    conversation = Conversation.objects.create(owner=alice, title="Launch planning")
    add_messages(
        conversation,
        (Role.USER, "The launch date is friday, keep it quiet."),
        (Role.ASSISTANT, "Understood: friday stays between us."),
    )
    return conversation


def texts(user: AbstractUser, query: str) -> list[str]:
    return ["".join(p.text for p in r.snippet) for r in search(user=user, query=query)]


def test_private_conversation_is_found_by_its_owner_only(
    alice: AbstractUser, bob: AbstractUser, charlie: AbstractUser, alices_secret: Conversation
) -> None:
    found = search(user=alice, query="friday")
    assert [(r.conversation_id, r.role) for r in found] == [(alices_secret.id, "assistant"), (alices_secret.id, "user")]
    assert search(user=bob, query="friday") == []
    assert search(user=charlie, query="friday") == []
    # The title neither.
    assert search(user=bob, query="launch") == []


def test_a_share_makes_it_searchable_and_removing_it_takes_it_away(
    alice: AbstractUser, bob: AbstractUser, charlie: AbstractUser, alices_secret: Conversation
) -> None:
    share_add(conversation=alices_secret, shared_by=alice, username="bob", permission="read")
    found = search(user=bob, query="friday")
    assert {r.conversation_id for r in found} == {alices_secret.id}
    assert len(found) == 2
    assert search(user=charlie, query="friday") == []
    share_remove(conversation=alices_secret, user_id=bob.pk)
    assert search(user=bob, query="friday") == []
    assert search(user=bob, query="launch") == []


def test_project_conversation_is_found_by_members_only(
    alice: AbstractUser, bob: AbstractUser, charlie: AbstractUser
) -> None:
    project = Project.objects.create(name="Apollo", created_by=alice)
    Membership.objects.create(project=project, user=alice, role=ProjectRole.OWNER)
    Membership.objects.create(project=project, user=bob, role=ProjectRole.VIEWER)
    conversation = Conversation.objects.create(owner=alice, title="Telemetry", project=project)
    add_messages(conversation, (Role.USER, "The booster telemetry looks nominal."))
    assert [r.conversation_id for r in search(user=bob, query="booster")] == [conversation.id]
    assert search(user=charlie, query="booster") == []
    Membership.objects.filter(project=project, user=bob).delete()
    assert search(user=bob, query="booster") == []


def test_titles_match_and_results_link_to_the_message(alice: AbstractUser, alices_secret: Conversation) -> None:
    title_hit = search(user=alice, query="planning")
    assert len(title_hit) == 1
    assert title_hit[0].message_id is None
    assert title_hit[0].url == f"/c/{alices_secret.id}/"
    assert [(p.text, p.hit) for p in title_hit[0].snippet] == [("Launch ", False), ("planning", True)]
    message = Message.objects.get(conversation=alices_secret, role=Role.USER)
    hit = next(r for r in search(user=alice, query="quiet") if r.message_id == message.id)
    assert hit.url == f"/c/{alices_secret.id}/#m-{message.id}"
    assert hit.author == "alice" and hit.role == "user" and hit.title == "Launch planning"


def test_search_ignores_case_and_empty_or_overlong_queries(alice: AbstractUser, alices_secret: Conversation) -> None:
    assert texts(alice, "QUIET") == ["The launch date is friday, keep it quiet."]
    assert search(user=alice, query="") == []
    assert search(user=alice, query="   ") == []
    assert search(user=alice, query="quiet " + "x" * 200) == []


def test_results_are_bounded(alice: AbstractUser) -> None:
    conversation = Conversation.objects.create(owner=alice, title="Many")
    add_messages(conversation, *[(Role.USER, f"report number {i}") for i in range(MAX_LIMIT + 10)])
    assert len(search(user=alice, query="report")) == 20
    assert len(search(user=alice, query="report", limit=10_000)) == MAX_LIMIT
    newest_first = search(user=alice, query="report", limit=3)
    assert ["".join(p.text for p in r.snippet) for r in newest_first] == [
        f"report number {i}" for i in (MAX_LIMIT + 9, MAX_LIMIT + 8, MAX_LIMIT + 7)
    ]
    second_page = search(user=alice, query="report", limit=3, offset=3)
    assert "".join(p.text for p in second_page[0].snippet) == f"report number {MAX_LIMIT + 6}"


def test_long_messages_give_a_short_snippet_around_the_hit(alice: AbstractUser) -> None:
    conversation = Conversation.objects.create(owner=alice, title="Essay")
    add_messages(conversation, (Role.USER, "word " * 500 + "needle in the middle " + "word " * 500))
    (result,) = search(user=alice, query="needle")
    text = "".join(p.text for p in result.snippet)
    assert text.startswith("…") and text.endswith("…")
    assert len(text) < 260
    assert [p.text for p in result.snippet if p.hit] == ["needle"]


def test_search_page_renders_results_with_markup_as_text(alice: AbstractUser, bob: AbstractUser) -> None:
    conversation = Conversation.objects.create(owner=alice, title="<img src=x onerror=alert(1)> title")
    add_messages(conversation, (Role.USER, "<script>alert('x')</script> rocket"))
    page = client_for(alice).get("/search/", {"q": "rocket"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; <mark>rocket</mark>" in html
    assert "&lt;img src=x onerror=alert(1)&gt; title" in html
    assert "<script>alert" not in html and "<img src=x" not in html
    assert f'href="/c/{conversation.id}/#m-' in html
    assert 'id="no-results"' not in html
    others = client_for(bob).get("/search/", {"q": "rocket"}).content.decode()
    assert 'id="no-results"' in others and "rocket</mark>" not in others


def test_search_page_without_a_query_shows_only_the_form(alice: AbstractUser) -> None:
    page = client_for(alice).get("/search/")
    assert page.status_code == 200
    assert b'name="q"' in page.content and b'id="no-results"' not in page.content
    too_long = client_for(alice).get("/search/", {"q": "x" * 201})
    assert b"at most 200 characters" in too_long.content


def test_search_json_for_the_sidebar(alice: AbstractUser, bob: AbstractUser, alices_secret: Conversation) -> None:
    response = client_for(alice).get("/search.json", {"q": "quiet"})
    assert response.status_code == 200
    body = json.loads(response.content)
    assert body["query"] == "quiet"
    (result,) = body["results"]
    message = Message.objects.get(conversation=alices_secret, role=Role.USER)
    assert result == {
        "conversation_id": str(alices_secret.id),
        "title": "Launch planning",
        "message_id": message.id,
        "role": "user",
        "author": "alice",
        "snippet": "The launch date is friday, keep it quiet.",
        "parts": [{"text": "The launch date is friday, keep it ", "hit": False}, {"text": "quiet", "hit": True},
                  {"text": ".", "hit": False}],
        "updated_at": result["updated_at"],
        "created_at": message.created_at.isoformat(),
        "url": f"/c/{alices_secret.id}/#m-{message.id}",
    }
    assert json.loads(client_for(bob).get("/search.json", {"q": "quiet"}).content) == {"query": "quiet", "results": []}
    anonymous = Client().get("/search.json", {"q": "quiet"})
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")


def test_message_search_uses_the_full_text_index_on_postgresql(alice: AbstractUser, alices_secret: Conversation) -> None:
    rows = message_matches(user=alice, query="friday")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # A tiny table is read sequentially anyway; forbidding that shows whether the
            # expression is the indexed one (otherwise there is no plan without a seq scan).
            cursor.execute("SET LOCAL enable_seqscan = off")
        plan = rows.explain()
        assert "chat_message_fts" in plan, plan
    else:
        assert "LIKE" in str(rows.query)
    assert [m.role for m in rows] == ["assistant", "user"]
