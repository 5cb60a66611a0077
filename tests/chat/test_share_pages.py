"""Snapshot links and the share API over HTTP: who may open, fork and manage shares.

Personas: ``alice`` owns the conversation, ``bob`` is the colleague she shares with, ``dave``
is any other signed-in user of the installation (links open for him too, the API does not).
"""

from __future__ import annotations

import json
from typing import cast

import pytest
from django.contrib.auth.models import User
from django.test import Client

from chat.models import Conversation, ConversationShare, Message, Role, ShareLink
from chat.services import conversation_create, share_add, share_link_create, share_link_revoke
from models_admin.models import LLMModel
from tests.conftest import make_user
from tests.factories import add_messages

pytestmark = pytest.mark.django_db


@pytest.fixture
def dave(db: None) -> User:
    return cast(User, make_user("dave"))


@pytest.fixture
def alices_chat(alice: User, smollm: LLMModel) -> Conversation:
    conversation = conversation_create(owner=alice, title="Lighthouse budget")
    add_messages(
        conversation,
        (Role.USER, "How many bulbs do we need?"),
        (Role.ASSISTANT, "About **forty** bulbs a year."),
    )
    return conversation


@pytest.fixture
def token(alice: User, alices_chat: Conversation) -> str:
    return share_link_create(conversation=alices_chat, created_by=alice).token


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post_json(client: Client, url: str, body: object | None = None) -> tuple[int, dict[str, object]]:
    response = client.post(url, data=json.dumps(body) if body is not None else "", content_type="application/json")
    data = json.loads(response.content) if response.content else {}
    return response.status_code, data


# ---- The snapshot page ----------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["bob", "dave"])
def test_any_signed_in_colleague_opens_the_snapshot(
    persona: str, token: str, bob: User, dave: User
) -> None:
    visitor = {"bob": bob, "dave": dave}[persona]
    response = client_for(visitor).get(f"/s/{token}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Shared by alice on" in page
    assert "a snapshot; later messages are not included" in page
    assert "How many bulbs do we need?" in page
    assert "About **forty** bulbs a year." in page  # as text; share.js renders the markdown
    assert "Lighthouse budget" in page
    assert f'action="/s/{token}/fork/"' in page
    assert "csrfmiddlewaretoken" in page


def test_anonymous_visitor_is_sent_to_login(token: str) -> None:
    response = Client().get(f"/s/{token}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_right_key_with_wrong_secret_is_not_found(bob: User, token: str) -> None:
    key, _dot, _secret = token.partition(".")
    response = client_for(bob).get(f"/s/{key}.not-the-secret/")
    assert response.status_code == 404
    assert "Lighthouse budget" not in response.content.decode()
    fork = client_for(bob).post(f"/s/{key}.not-the-secret/fork/")
    assert fork.status_code == 404
    assert not Conversation.objects.filter(owner=bob).exists()


def test_revoked_link_answers_gone_with_who_shared_it(
    alice: User, bob: User, alices_chat: Conversation, token: str
) -> None:
    link = ShareLink.objects.get(conversation=alices_chat)
    assert share_link_revoke(conversation=alices_chat, link_id=link.id)
    response = client_for(bob).get(f"/s/{token}/")
    assert response.status_code == 410
    page = response.content.decode()
    assert "This link was revoked" in page
    assert "alice shared this chat" in page
    assert "How many bulbs" not in page
    fork = client_for(bob).post(f"/s/{token}/fork/")
    assert fork.status_code == 410
    assert not Conversation.objects.filter(owner=bob).exists()


def test_messages_added_after_the_link_are_not_in_the_snapshot(
    bob: User, alices_chat: Conversation, token: str
) -> None:
    add_messages(alices_chat, (Role.USER, "Also order the new lens"), (Role.ASSISTANT, "Lens ordered."))
    page = client_for(bob).get(f"/s/{token}/").content.decode()
    assert "About **forty** bulbs a year." in page
    assert "Also order the new lens" not in page
    assert "Lens ordered." not in page


def test_fork_gives_bob_a_private_copy_of_the_snapshot(
    alice: User, bob: User, alices_chat: Conversation, token: str
) -> None:
    add_messages(alices_chat, (Role.USER, "A later question"))
    before = list(Message.objects.filter(conversation=alices_chat).order_by("id").values_list("id", "content"))

    response = client_for(bob).post(f"/s/{token}/fork/")

    assert response.status_code == 302
    copy = Conversation.objects.get(owner=bob)
    assert response["Location"] == f"/c/{copy.id}/"
    assert copy.title == "Lighthouse budget"
    assert copy.project_id is None
    assert not ConversationShare.objects.filter(conversation=copy).exists()
    copied = list(Message.objects.filter(conversation=copy).order_by("id").values_list("role", "content"))
    assert copied == [
        (Role.USER, "How many bulbs do we need?"),
        (Role.ASSISTANT, "About **forty** bulbs a year."),
    ]
    # Alice's conversation is untouched, and the copy is Bob's alone.
    after = list(Message.objects.filter(conversation=alices_chat).order_by("id").values_list("id", "content"))
    assert after == before
    assert client_for(alice).get(f"/c/{copy.id}/").status_code == 404
    assert client_for(bob).get(f"/c/{copy.id}/").status_code == 200


def test_markup_in_the_title_renders_as_text(alice: User, bob: User, smollm: LLMModel) -> None:
    conversation = conversation_create(owner=alice, title="<script>alert(1)</script> plan")
    add_messages(conversation, (Role.USER, "<img src=x onerror=alert(2)>"))
    token = share_link_create(conversation=conversation, created_by=alice).token
    page = client_for(bob).get(f"/s/{token}/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; plan" in page
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page


# ---- The share API: only the owner manages shares ---------------------------------------------


def test_owner_shares_lists_and_removes_a_colleague(
    alice: User, bob: User, alices_chat: Conversation
) -> None:
    client = client_for(alice)
    status, data = post_json(client, f"/c/{alices_chat.id}/shares/", {"username": "bob", "permission": "read"})
    assert status == 200
    assert data["people"] == [
        {
            "user_id": bob.pk,
            "username": "bob",
            "permission": "read",
            "shared_by": "alice",
            "created_at": ConversationShare.objects.get(user=bob).created_at.isoformat(),
        }
    ]
    listed = client.get(f"/c/{alices_chat.id}/shares/")
    assert listed.status_code == 200
    assert [p["username"] for p in listed.json()["people"]] == ["bob"]
    # Bob now sees it under "Shared with me".
    assert "Lighthouse budget" in client_for(bob).get("/", HTTP_ACCEPT="text/html").content.decode()

    status, data = post_json(client, f"/c/{alices_chat.id}/shares/{bob.pk}/remove/")
    assert status == 200
    assert data["people"] == []
    assert not ConversationShare.objects.filter(conversation=alices_chat).exists()


def test_owner_creates_and_revokes_a_link(alice: User, alices_chat: Conversation) -> None:
    client = client_for(alice)
    status, data = post_json(client, f"/c/{alices_chat.id}/links/")
    assert status == 201
    assert isinstance(data["url"], str) and "/s/" in data["url"]
    links = data["links"]
    assert isinstance(links, list) and len(links) == 1
    assert links[0]["created_by"] == "alice" and links[0]["revoked"] is False
    status, data = post_json(client, f"/c/{alices_chat.id}/links/{links[0]['id']}/revoke/")
    assert status == 200
    assert data["links"][0]["revoked"] is True  # type: ignore[index]


def test_reader_may_not_manage_shares(
    alice: User, bob: User, dave: User, alices_chat: Conversation
) -> None:
    share_add(conversation=alices_chat, shared_by=alice, username="bob", permission="read")
    bob_client = client_for(bob)
    assert bob_client.get(f"/c/{alices_chat.id}/").status_code == 200  # he may read it

    response = bob_client.get(f"/c/{alices_chat.id}/shares/")
    assert response.status_code == 403
    assert response.json()["error"]
    status, _data = post_json(bob_client, f"/c/{alices_chat.id}/shares/", {"username": "dave", "permission": "write"})
    assert status == 403
    status, _data = post_json(bob_client, f"/c/{alices_chat.id}/shares/{bob.pk}/remove/")
    assert status == 403
    status, _data = post_json(bob_client, f"/c/{alices_chat.id}/links/")
    assert status == 403
    assert list(ConversationShare.objects.filter(conversation=alices_chat).values_list("user__username", flat=True)) == ["bob"]
    assert not ShareLink.objects.filter(conversation=alices_chat).exists()


def test_outsider_gets_not_found_from_the_share_api(
    alice: User, dave: User, alices_chat: Conversation
) -> None:
    dave_client = client_for(dave)
    response = dave_client.get(f"/c/{alices_chat.id}/shares/")
    assert response.status_code == 404
    assert "Lighthouse" not in response.content.decode()
    status, _data = post_json(dave_client, f"/c/{alices_chat.id}/shares/", {"username": "dave", "permission": "write"})
    assert status == 404
    status, _data = post_json(dave_client, f"/c/{alices_chat.id}/links/")
    assert status == 404
    assert not ConversationShare.objects.exists()
    assert not ShareLink.objects.exists()


def test_unknown_username_is_refused_with_a_clear_message(alice: User, alices_chat: Conversation) -> None:
    status, data = post_json(client_for(alice), f"/c/{alices_chat.id}/shares/", {"username": "nobody", "permission": "read"})
    assert status == 400
    assert data["error"] == "There is no active user called “nobody”."
    assert not ConversationShare.objects.exists()


def test_chat_page_renders_the_share_dialog_and_sidebar_sections(
    alice: User, bob: User, alices_chat: Conversation
) -> None:
    share_add(conversation=alices_chat, shared_by=alice, username="bob", permission="write")
    page = client_for(bob).get("/", HTTP_ACCEPT="text/html").content.decode()
    assert 'id="share-dialog"' in page
    assert 'id="sidebar-shared"' in page
    assert "from alice" in page
    assert 'href="/p/new/"' in page and 'href="/p/"' in page
    assert 'action="/search/"' in page
