"""The project services: one per state change, the last-owner rule, and what open sockets hear."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import User

from chat.models import Conversation
from chat.services import conversation_create
from models_admin.models import LLMModel
from models_admin.services.registry import model_access_set, model_copy
from projects.access import ProjectNotFound, get_project, project_role
from projects.models import Membership, Project, ProjectRole
from projects.services import (
    ProjectError,
    member_add,
    member_remove,
    member_set_role,
    ownership_transfer,
    project_create,
    project_delete,
    project_leave,
    project_update,
)
from tests.chat.helpers import connect, receive_until

LAST_OWNER = "A project needs an owner. Transfer ownership to another member first, or delete the project."


def roles(project: Project) -> dict[str, str]:
    return dict(Membership.objects.filter(project=project).values_list("user__username", "role"))


# --- Create and update ------------------------------------------------------------------------


@pytest.mark.django_db
def test_creator_becomes_the_only_owner(alice: User, smollm: LLMModel) -> None:
    project = project_create(creator=alice, name="  Launch   plan ", description="x", instructions="Be brief.", default_model=smollm)
    assert project.name == "Launch plan" and project.instructions == "Be brief." and project.default_model == smollm
    assert project.created_by == alice
    assert roles(project) == {"alice": "owner"}


@pytest.mark.django_db
def test_create_refuses_an_empty_name_and_a_model_the_creator_may_not_use(
    alice: User, charlie: User, admin_user: User, smollm: LLMModel
) -> None:
    with pytest.raises(ProjectError) as empty:
        project_create(creator=alice, name="   ")
    assert empty.value.message == "Give the project a name."
    secret = model_copy(actor=admin_user, source=smollm.full_name, destination="finance-bot:latest")
    model_access_set(actor=admin_user, model=secret, access="restricted", user_ids=[alice.pk])
    with pytest.raises(ProjectError) as refused:
        project_create(creator=charlie, name="Leak", default_model=secret)
    assert refused.value.message == "The model “finance-bot:latest” is not available to you."
    assert not Project.objects.exists()


@pytest.mark.django_db
def test_update_changes_the_details(alice: User, project: Project) -> None:
    project_update(project=project, actor=alice, name="Q4 report", description="", instructions="Answer in German.", default_model=None)
    project.refresh_from_db()
    assert (project.name, project.description, project.instructions) == ("Q4 report", "", "Answer in German.")


# --- Members and the last-owner rule ----------------------------------------------------------


@pytest.mark.django_db
def test_member_add_gives_the_role_and_refuses_a_second_time(project: Project, dave: User) -> None:
    member_add(project=project, user=dave, role="viewer")
    assert roles(project)["dave"] == "viewer"
    with pytest.raises(ProjectError) as twice:
        member_add(project=project, user=dave, role="editor")
    assert twice.value.message == "dave is already a member of this project."
    assert roles(project)["dave"] == "viewer"


@pytest.mark.django_db
def test_last_owner_cannot_leave_be_demoted_or_removed(alice: User, project: Project) -> None:
    for action in (
        lambda: project_leave(project=project, user=alice),
        lambda: member_set_role(project=project, user=alice, role=ProjectRole.EDITOR),
        lambda: member_remove(project=project, user=alice),
    ):
        with pytest.raises(ProjectError) as refused:
            action()
        assert refused.value.message == LAST_OWNER
    assert roles(project)["alice"] == "owner"


@pytest.mark.django_db
def test_an_owner_may_leave_once_another_owner_exists(alice: User, bob: User, project: Project) -> None:
    member_set_role(project=project, user=bob, role=ProjectRole.OWNER)
    project_leave(project=project, user=alice)
    assert roles(project) == {"bob": "owner", "charlie": "viewer"}
    with pytest.raises(ProjectNotFound):
        get_project(user=alice, project_id=project.id)


@pytest.mark.django_db
def test_ownership_transfer_makes_the_old_owner_an_editor(alice: User, charlie: User, project: Project) -> None:
    ownership_transfer(project=project, from_user=alice, to_user=charlie)
    assert roles(project) == {"alice": "editor", "bob": "editor", "charlie": "owner"}


@pytest.mark.django_db
def test_ownership_goes_only_to_a_member_and_only_from_an_owner(alice: User, bob: User, dave: User, project: Project) -> None:
    with pytest.raises(ProjectError) as outsider:
        ownership_transfer(project=project, from_user=alice, to_user=dave)
    assert outsider.value.message == "dave is not a member of this project. Add them first."
    with pytest.raises(ProjectError) as not_owner:
        ownership_transfer(project=project, from_user=bob, to_user=bob)
    assert not_owner.value.message == "Choose another member to hand the project to."
    with pytest.raises(ProjectError) as editor:
        ownership_transfer(project=project, from_user=bob, to_user=alice)
    assert editor.value.message == "Only an owner can transfer ownership."
    assert roles(project) == {"alice": "owner", "bob": "editor", "charlie": "viewer"}


@pytest.mark.django_db
def test_delete_keeps_the_conversations_as_their_authors_private_chats(
    alice: User, bob: User, charlie: User, project: Project, smollm: LLMModel
) -> None:
    conversation = conversation_create(owner=bob, project=project, title="Forecast")
    project_delete(project=project)
    assert not Project.objects.exists() and not Membership.objects.exists()
    conversation.refresh_from_db()
    assert conversation.project_id is None and conversation.owner == bob and conversation.title == "Forecast"
    assert Conversation.objects.count() == 1


# --- What open sockets hear -------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _one_process_layer(settings: Any) -> None:
    # These tests listen from sync code, one event loop per call: Redis's pub/sub layer only
    # serves channels of the loop that made them, the in-memory layer serves them all. The
    # socket tests (tests/chat/test_together_socket.py) cover the real layer end to end.
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def listen(user: User) -> tuple[str, Callable[[], list[dict[str, Any]]]]:
    """A channel in the user's group, and a function that drains what it received."""
    layer = get_channel_layer()
    assert layer is not None
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(f"user.{user.pk}", channel)

    def drain() -> list[dict[str, Any]]:
        got = []

        async def take() -> None:
            import asyncio

            while True:
                try:
                    got.append(await asyncio.wait_for(layer.receive(channel), timeout=0.2))
                except asyncio.TimeoutError:
                    return

        async_to_sync(take)()
        return got

    return channel, drain


@pytest.mark.django_db
def test_membership_changes_tell_the_member_after_commit(
    project: Project, dave: User, django_capture_on_commit_callbacks: Any
) -> None:
    _channel, drain = listen(dave)
    with django_capture_on_commit_callbacks(execute=False) as pending:
        member_add(project=project, user=dave, role="viewer")
    assert drain() == []  # nothing before the commit
    for callback in pending:
        callback()
    events = drain()
    assert {"type": "access.changed"} in events
    frames = [json.loads(e["text"]) for e in events if e["type"] == "chat.relay"]
    assert frames == [{"type": "project", "action": "added", "id": str(project.id), "name": "Quarterly report"}]

    with django_capture_on_commit_callbacks(execute=True):
        member_remove(project=project, user=dave)
    events = drain()
    assert {"type": "access.changed"} in events
    assert [json.loads(e["text"])["action"] for e in events if e["type"] == "chat.relay"] == ["removed"]


@pytest.mark.django_db
def test_rename_and_delete_reach_every_member(
    alice: User, charlie: User, project: Project, django_capture_on_commit_callbacks: Any
) -> None:
    _channel, drain = listen(charlie)
    with django_capture_on_commit_callbacks(execute=True):
        project_update(project=project, actor=alice, name="Q4", description="", instructions="", default_model=None)
    assert [json.loads(e["text"]) for e in drain() if e["type"] == "chat.relay"] == [
        {"type": "project", "action": "renamed", "id": str(project.id), "name": "Q4"}
    ]
    project_id = str(project.id)
    with django_capture_on_commit_callbacks(execute=True):
        project_delete(project=project)
    events = drain()
    assert {"type": "access.changed"} in events
    assert [json.loads(e["text"]) for e in events if e["type"] == "chat.relay"] == [
        {"type": "project", "action": "deleted", "id": project_id, "name": "Q4"}
    ]


@pytest.mark.django_db(transaction=True)
async def test_a_removed_member_loses_an_open_project_conversation_at_once(
    alice: User, bob: User, charlie: User, smollm: LLMModel
) -> None:
    project = await database_sync_to_async(project_create)(creator=alice, name="Quarterly report")
    await database_sync_to_async(member_add)(project=project, user=charlie, role="viewer")
    conversation = await database_sync_to_async(conversation_create)(owner=alice, project=project)
    socket, connected = await connect(charlie, conversation.id)
    assert connected  # the helper has read the first frame (the access level)

    await database_sync_to_async(member_remove)(project=project, user=charlie)
    access, _ = await receive_until(socket, "access", timeout=10)
    assert access["level"] == "none"
    closed = await socket.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": 4403}
    assert await database_sync_to_async(project_role)(user=charlie, project=project) is None
