"""The one access rule over HTTP: owner, editor, viewer, a read share and an outsider."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser
from django.test import Client

from chat.access import Access, conversation_access, readable_conversations
from chat.models import Conversation, ConversationShare, Message
from chat.services import conversation_create
from models_admin.models import LLMModel
from projects.models import Membership

from .personas import Team, make_team

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(alice: AbstractUser, bob: AbstractUser, charlie: AbstractUser, smollm: LLMModel) -> Team:
    return make_team(alice, bob, charlie)


def client_for(user: AbstractUser) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post(user: AbstractUser, url: str, body: dict[str, Any] | None = None) -> Any:
    return client_for(user).post(url, json.dumps(body or {}), content_type="application/json")


def test_each_person_gets_the_access_their_role_gives(team: Team) -> None:
    levels = {p.username: conversation_access(user=p, conversation=team.conversation)
              for p in (team.alice, team.bob, team.charlie, team.dave, team.erin)}
    assert levels == {"alice": Access.OWNER, "bob": Access.WRITE, "charlie": Access.READ,
                      "dave": Access.NONE, "erin": Access.READ}


def test_readable_conversations_agrees_with_the_access_helper(team: Team) -> None:
    private = conversation_create(owner=team.alice, title="alice alone")
    bobs = conversation_create(owner=team.bob, title="bob alone")
    ConversationShare.objects.create(conversation=bobs, user=team.dave, permission="write")
    everything = [team.conversation, private, bobs]
    for person in (team.alice, team.bob, team.charlie, team.dave, team.erin):
        listed = set(readable_conversations(user=person).values_list("id", flat=True))
        allowed = {c.id for c in everything if conversation_access(user=person, conversation=c) > Access.NONE}
        assert listed == allowed, person.username


def test_page_opens_for_members_and_shares_and_is_404_for_outsiders(team: Team) -> None:
    url = f"/c/{team.conversation.id}/"
    for person in (team.alice, team.bob, team.charlie, team.erin):
        response = client_for(person).get(url)
        assert response.status_code == 200, person.username
        assert "the secret date" in response.content.decode()
    response = client_for(team.dave).get(url)
    assert response.status_code == 404
    assert "the secret date" not in response.content.decode()


def test_page_tells_the_browser_what_the_person_may_do(team: Team) -> None:
    for person, level in ((team.alice, "owner"), (team.bob, "write"), (team.charlie, "read")):
        page = client_for(person).get(f"/c/{team.conversation.id}/").content.decode()
        assert f'"access": "{level}"' in page, person.username


def test_project_and_title_markup_renders_as_text(team: Team) -> None:
    Conversation.objects.filter(pk=team.conversation.pk).update(title="<script>alert(1)</script>")
    page = client_for(team.bob).get(f"/c/{team.conversation.id}/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize(
    ("action", "body"),
    [("rename", {"title": "Taken over"}), ("delete", {}), ("flags", {"pinned": True}), ("move", {"project": None})],
)
def test_only_the_owner_may_rename_delete_pin_or_move(team: Team, action: str, body: dict[str, Any]) -> None:
    url = f"/c/{team.conversation.id}/{action}/"
    for person in (team.bob, team.charlie, team.erin):
        response = post(person, url, body)
        assert response.status_code == 403, (person.username, action)
        assert response.json()["code"] == "forbidden"
    response = post(team.dave, url, body)
    assert response.status_code == 404
    team.conversation.refresh_from_db()
    assert (team.conversation.title, team.conversation.pinned, team.conversation.project_id) == (
        "Launch date", False, team.project.id,
    )


def test_viewers_cannot_stop_and_outsiders_do_not_learn_the_conversation_exists(team: Team) -> None:
    url = f"/c/{team.conversation.id}/stop/"
    assert post(team.charlie, url).status_code == 403
    assert post(team.erin, url).status_code == 403
    assert post(team.dave, url).status_code == 404
    assert post(team.bob, url).status_code == 202


def test_readers_may_look_at_branches_but_only_writers_change_the_current_one(team: Team) -> None:
    first_answer = Message.objects.get(conversation=team.conversation, role="assistant")
    other = Message.objects.create(conversation=team.conversation, parent=first_answer.parent, role="assistant",
                                   content="On monday.")
    Conversation.objects.filter(pk=team.conversation.pk).update(current_leaf=other)
    url = f"/c/{team.conversation.id}/branch/"

    response = post(team.charlie, url, {"message_id": first_answer.id})
    assert response.status_code == 200
    assert [m["content"] for m in response.json()["messages"]][-1] == "On friday, the secret date."
    assert response.json()["messages"][-1]["siblings"] == [first_answer.id, other.id]
    team.conversation.refresh_from_db()
    assert team.conversation.current_leaf_id == other.id  # a viewer's look changes nothing

    assert post(team.bob, url, {"message_id": first_answer.id}).status_code == 200
    team.conversation.refresh_from_db()
    assert team.conversation.current_leaf_id == first_answer.id
    assert post(team.dave, url, {"message_id": first_answer.id}).status_code == 404


def test_branch_ids_from_another_conversation_are_refused(team: Team) -> None:
    elsewhere = conversation_create(owner=team.dave, title="dave's")
    from tests.factories import add_messages

    [foreign] = add_messages(elsewhere, ("user", "dave's own secret"))
    response = post(team.alice, f"/c/{team.conversation.id}/branch/", {"message_id": foreign.id})
    assert response.status_code == 400
    assert "dave's own secret" not in response.content.decode()
    for bad in ("1", None, True, [1], {"id": 1}):
        assert post(team.alice, f"/c/{team.conversation.id}/branch/", {"message_id": bad}).status_code == 400


def test_anyone_who_may_read_can_fork_a_private_copy(team: Team) -> None:
    response = post(team.charlie, f"/c/{team.conversation.id}/fork/")
    assert response.status_code == 201
    fork = Conversation.objects.get(pk=response.json()["id"])
    assert fork.owner_id == team.charlie.pk and fork.project_id is None
    from chat import tree

    assert [m.content for m in tree.thread(fork).path] == ["When do we launch?", "On friday, the secret date."]
    assert conversation_access(user=team.alice, conversation=fork) == Access.NONE
    assert post(team.dave, f"/c/{team.conversation.id}/fork/").status_code == 404


def test_removed_members_lose_access_at_once(team: Team) -> None:
    Membership.objects.filter(user=team.bob).delete()
    assert client_for(team.bob).get(f"/c/{team.conversation.id}/").status_code == 404


def test_moving_into_a_project_needs_an_editor_role_there(team: Team) -> None:
    mine = conversation_create(owner=team.charlie, title="charlie's notes")
    response = post(team.charlie, f"/c/{mine.id}/move/", {"project": str(team.project.id)})
    assert response.status_code == 400
    assert "editor" in response.json()["error"]
    response = post(team.dave, f"/c/{conversation_create(owner=team.dave).id}/move/", {"project": str(team.project.id)})
    assert response.status_code == 400  # not a member: the project is not even named back
    assert "Launch" not in response.json()["error"]
    bobs = conversation_create(owner=team.bob, title="bob's draft")
    assert post(team.bob, f"/c/{bobs.id}/move/", {"project": str(team.project.id)}).status_code == 200
    bobs.refresh_from_db()
    assert conversation_access(user=team.charlie, conversation=bobs) == Access.READ


def test_sidebar_pages_cover_every_conversation_once_pinned_first(alice: AbstractUser, smollm: LLMModel) -> None:
    made = [conversation_create(owner=alice, title=f"chat {i}") for i in range(120)]
    Conversation.objects.filter(pk__in=[made[5].pk, made[50].pk]).update(pinned=True)
    seen: list[str] = []
    after = None
    while True:
        page = client_for(alice).get("/c/list/", {"after": after} if after else {}).json()
        seen += [item["id"] for item in page["items"]]
        after = page["next"]
        if after is None:
            break
    assert len(seen) == 120 and len(set(seen)) == 120
    assert set(seen[:2]) == {str(made[5].id), str(made[50].id)}
    assert client_for(alice).get("/c/list/", {"after": "garbage_x_y"}).status_code == 200
