"""Reads for the chat pages: the sidebar and open conversations. Access goes through
``chat.access`` (the one helper); these only shape what it allows."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from .access import UserLike, owned_conversations, shared_with
from .models import Conversation, Message

SIDEBAR_PAGE = 50


@dataclass(frozen=True)
class SidebarPage:
    items: list[Conversation]
    #: Pass back as ``after`` for the next page; None at the end.
    next_cursor: str | None


def _cursor(conversation: Conversation) -> str:
    return f"{int(conversation.pinned)}_{conversation.updated_at.isoformat()}_{conversation.id}"


def _parse_cursor(cursor: str) -> tuple[bool, dt.datetime, uuid.UUID] | None:
    """A cursor from ``_cursor``; anything else (hand-made, truncated) means the first page."""
    try:
        pinned, stamp, key = cursor[:120].split("_", 2)
        return pinned == "1", dt.datetime.fromisoformat(stamp), uuid.UUID(key)
    except ValueError:
        return None


def sidebar(*, user: UserLike, after: str | None = None, archived: bool = False, limit: int = SIDEBAR_PAGE) -> SidebarPage:
    """The user's own conversations, pinned first, then newest first, one page at a time.

    Keyset pagination on (pinned, updated_at, id), served by the ``chat_conv_sidebar``
    index: every page costs the same, however many conversations there are.
    """
    rows: QuerySet[Conversation] = (
        owned_conversations(user=user)
        .filter(archived=archived)
        .select_related("project")
        .only("id", "title", "updated_at", "pinned", "archived", "project__id", "project__name")
        .order_by("-pinned", "-updated_at", "-id")
    )
    position = _parse_cursor(after) if after else None
    if position is not None:
        pinned, stamp, key = position
        later = Q(updated_at__lt=stamp) | Q(updated_at=stamp, id__lt=key)
        rows = rows.filter(Q(pinned=False) | Q(pinned=True) & later) if pinned else rows.filter(Q(pinned=False) & later)
    items = list(rows[: limit + 1])
    more = len(items) > limit
    items = items[:limit]
    return SidebarPage(items=items, next_cursor=_cursor(items[-1]) if more and items else None)


def shared_sidebar(*, user: UserLike, limit: int = 20) -> list[Conversation]:
    """Conversations colleagues shared with this user, newest first."""
    return list(
        shared_with(user=user).select_related("owner").only("id", "title", "updated_at", "owner__username").order_by("-updated_at")[:limit]
    )


def streaming_message(*, conversation: Conversation) -> Message | None:
    return conversation.messages.streaming().order_by("-id").first()
