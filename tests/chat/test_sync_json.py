"""GET /c/<id>/sync.json: the open conversation's state again, as the page embeds it, for
whoever may read it (chat.access, the same helper as the page), and a 404 for anyone else."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser
from django.test import Client

from chat.models import MessageStatus, Role
from chat.services import conversation_create
from models_admin.models import LLMModel
from tests.factories import add_messages

from .personas import Team, make_team

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(alice: AbstractUser, bob: AbstractUser, charlie: AbstractUser, smollm: LLMModel) -> Team:
    return make_team(alice, bob, charlie)


def client_for(user: AbstractUser | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def sync(user: AbstractUser | None, conversation_id: object) -> Any:
    return client_for(user).get(f"/c/{conversation_id}/sync.json")


def page_data(user: AbstractUser, conversation_id: object) -> dict[str, Any]:
    page = client_for(user).get(f"/c/{conversation_id}/").content.decode()
    match = re.search(r'<script id="page-data" type="application/json">(.*?)</script>', page, re.S)
    assert match, "the page embeds its data"
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def test_owner_gets_the_branch_title_project_and_access(team: Team) -> None:
    response = sync(team.alice, team.conversation.id)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    data = response.json()
    assert data["conversation_id"] == str(team.conversation.id)
    assert data["access"] == "owner"
    assert data["owner"] == "alice"
    assert data["conversation"]["title"] == "Launch date"
    assert data["conversation"]["project"] == {"id": str(team.project.id), "name": "Launch <b>plan</b>"}
    assert [(m["role"], m["content"]) for m in data["messages"]] == [
        ("user", "When do we launch?"),
        ("assistant", "On friday, the secret date."),
    ]
    assert data["generating_id"] is None


def test_it_sends_what_the_page_embeds(team: Team) -> None:
    embedded = page_data(team.bob, team.conversation.id)
    synced = sync(team.bob, team.conversation.id).json()
    assert synced == {key: embedded[key] for key in synced}
    assert set(synced) == {"conversation_id", "conversation", "access", "owner", "messages", "generating_id"}


@pytest.mark.parametrize(("persona", "level"), [("bob", "write"), ("charlie", "read"), ("erin", "read")])
def test_members_and_a_read_only_share_may_read(team: Team, persona: str, level: str) -> None:
    response = sync(getattr(team, persona), team.conversation.id)
    assert response.status_code == 200
    data = response.json()
    assert data["access"] == level
    assert data["messages"][-1]["content"] == "On friday, the secret date."


def test_outsider_gets_404_and_nothing_of_the_conversation(team: Team) -> None:
    response = sync(team.dave, team.conversation.id)
    assert response.status_code == 404
    assert response.json() == {"error": "This conversation does not exist or is not yours.", "code": "not_found"}
    assert b"secret" not in response.content and b"Launch" not in response.content


def test_another_users_private_conversation_is_404_like_a_missing_one(team: Team, alice: AbstractUser) -> None:
    private = conversation_create(owner=team.bob, title="bob alone")
    add_messages(private, (Role.USER, "bob's secret"))
    mine = sync(alice, private.id)
    missing = sync(alice, uuid.uuid4())
    malformed = sync(alice, "not-a-uuid")
    assert mine.status_code == missing.status_code == malformed.status_code == 404
    assert mine.json() == missing.json() == malformed.json()


def test_signed_out_visitors_are_sent_to_sign_in(team: Team) -> None:
    response = sync(None, team.conversation.id)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_an_answer_being_generated_is_named(team: Team) -> None:
    (answer,) = add_messages(team.conversation, (Role.ASSISTANT, "Half an"), status=MessageStatus.STREAMING)
    data = sync(team.charlie, team.conversation.id).json()
    assert data["generating_id"] == answer.id
    assert data["messages"][-1]["status"] == "streaming"


def test_only_get(team: Team) -> None:
    response = client_for(team.alice).post(f"/c/{team.conversation.id}/sync.json")
    assert response.status_code == 405
