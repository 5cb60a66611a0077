"""What the chat's sockets hear: channel-layer groups and the frames sent to them.

Two groups: ``conv.<id>`` (every socket open on one conversation: messages, the answer as it
streams, renames, deletion) and ``user.<id>`` (every socket of one user: their sidebar and
their access). Frames are serialised once, not per socket (``relay``). Writes announce
themselves only after their transaction commits, so no tab hears of a change that rolled back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from projects.models import Membership
from webio.groups import ACCESS_CHANGED, after_commit, relay, user_group

from .models import Conversation, ConversationShare

__all__ = ["ACCESS_CHANGED", "access_changed", "after_commit", "conversation_changed", "conversation_group",
           "members", "relay", "user_group"]


def conversation_group(conversation_id: object) -> str:
    return f"conv.{conversation_id}"


def members(conversation: Conversation) -> set[int]:
    """Everyone who may see this conversation in their sidebar or open it (two queries)."""
    people = {conversation.owner_id}
    people.update(ConversationShare.objects.filter(conversation=conversation).values_list("user_id", flat=True))
    if conversation.project_id is not None:
        people.update(Membership.objects.filter(project_id=conversation.project_id).values_list("user_id", flat=True))
    return people


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
