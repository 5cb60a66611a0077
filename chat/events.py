"""What the chat's sockets hear: channel-layer groups and the frames sent to them.

Two groups: ``conv.<id>`` (every socket open on one conversation: messages, the answer as it
streams, renames, deletion) and ``user.<id>`` (every socket of one user: their sidebar and
their access). Frames are serialised once, not per socket (``relay``). Writes announce
themselves only after their transaction commits, so no tab hears of a change that rolled back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from projects.models import Membership

from .models import Conversation, ConversationShare


def conversation_group(conversation_id: object) -> str:
    return f"conv.{conversation_id}"


def user_group(user_id: object) -> str:
    return f"user.{user_id}"


def relay(payload: dict[str, Any]) -> dict[str, str]:
    """A channel-layer event carrying a pre-serialised socket frame."""
    return {"type": "chat.relay", "text": orjson.dumps(payload).decode()}


#: Tells a socket to re-check its user's access (a share, a membership or a project changed).
ACCESS_CHANGED: dict[str, str] = {"type": "access.changed"}


def members(conversation: Conversation) -> set[int]:
    """Everyone who may see this conversation in their sidebar or open it (two queries)."""
    people = {conversation.owner_id}
    people.update(ConversationShare.objects.filter(conversation=conversation).values_list("user_id", flat=True))
    if conversation.project_id is not None:
        people.update(Membership.objects.filter(project_id=conversation.project_id).values_list("user_id", flat=True))
    return people


def _send(groups: Iterable[str], event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    send = async_to_sync(layer.group_send)
    for group in groups:
        send(group, event)


def after_commit(groups: Iterable[str], event: dict[str, Any]) -> None:
    """Send ``event`` to ``groups`` once the current transaction commits (sync code only)."""
    targets = list(groups)
    transaction.on_commit(lambda: _send(targets, event))


def conversation_changed(conversation: Conversation, payload: dict[str, Any], *, people: Iterable[int] | None = None) -> None:
    """Tell every open tab of every member: the conversation's own sockets and sidebars."""
    groups = [conversation_group(conversation.id)]
    groups += [user_group(u) for u in (people if people is not None else members(conversation))]
    after_commit(groups, relay({"type": "conversation", "id": str(conversation.id), **payload}))


def access_changed(*, user_ids: Iterable[int] = (), conversation: Conversation | None = None) -> None:
    groups = [user_group(u) for u in user_ids]
    if conversation is not None:
        groups.append(conversation_group(conversation.id))
    after_commit(groups, ACCESS_CHANGED)
