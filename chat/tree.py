"""Messages as a tree: the branch a conversation shows, and the way down a branch.

Each message has a parent (None for the first); editing a message or regenerating an answer
adds a sibling. A conversation shows one path, from the root to its ``current_leaf``. Paths
are read with a recursive query, so opening a conversation costs the same few queries
however long it is or however many branches it has.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import Q

from .models import Conversation, Message

# Deeper than any conversation can get through the socket; only a bound for the queries.
MAX_DEPTH = 100_000


@dataclass(frozen=True)
class Thread:
    """The shown path, oldest first, and for each message the ids of it and its siblings."""

    path: list[Message]
    siblings: dict[int, list[int]]


def ancestor_ids(leaf_id: int, *, limit: int = MAX_DEPTH) -> list[int]:
    """Ids from ``leaf_id`` up to the root (newest first), at most ``limit`` of them."""
    table = connection.ops.quote_name(Message._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH RECURSIVE up(id, parent_id, depth) AS (
                SELECT id, parent_id, 1 FROM {table} WHERE id = %s
                UNION ALL
                SELECT m.id, m.parent_id, up.depth + 1 FROM {table} m JOIN up ON m.id = up.parent_id
                WHERE up.depth < %s
            )
            SELECT id FROM up ORDER BY depth
            """,
            [leaf_id, limit],
        )
        return [row[0] for row in cursor.fetchall()]


def newest_leaf_below(message_id: int) -> int:
    """Follow the newest child from ``message_id`` down to a leaf (branch navigation)."""
    table = connection.ops.quote_name(Message._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH RECURSIVE down(id, depth) AS (
                SELECT CAST(%s AS BIGINT), 0
                UNION ALL
                SELECT (SELECT MAX(c.id) FROM {table} c WHERE c.parent_id = down.id), down.depth + 1
                FROM down WHERE down.id IS NOT NULL AND down.depth < %s
            )
            SELECT id FROM down WHERE id IS NOT NULL ORDER BY depth DESC LIMIT 1
            """,
            [message_id, MAX_DEPTH],
        )
        row = cursor.fetchone()
    return int(row[0]) if row else message_id


def thread(conversation: Conversation, *, leaf_id: int | None = None) -> Thread:
    """The path to ``leaf_id`` (default: the conversation's current leaf) with sibling ids.

    Three queries: the path's ids, its messages with their authors, and the siblings.
    ``leaf_id`` must already be known to belong to this conversation.
    """
    leaf = leaf_id or conversation.current_leaf_id
    if leaf is None:
        return Thread(path=[], siblings={})
    ids = ancestor_ids(leaf)
    rows = {m.id: m for m in Message.objects.filter(conversation=conversation, id__in=ids).select_related("author")}
    path = [rows[i] for i in reversed(ids) if i in rows]
    parents = {m.parent_id for m in path if m.parent_id is not None}
    by_parent: dict[int | None, list[int]] = {}
    family = (
        Message.objects.filter(conversation=conversation)
        .filter(Q(parent_id__in=parents) | Q(parent_id__isnull=True))
        .order_by("id")
        .values_list("parent_id", "id")
    )
    for parent_id, message_id in family:
        by_parent.setdefault(parent_id, []).append(message_id)
    siblings = {m.id: by_parent.get(m.parent_id, [m.id]) for m in path}
    return Thread(path=path, siblings=siblings)


def history_ids(leaf_id: int) -> list[int]:
    """The ids a prompt may draw on, newest first, within the request bound."""
    return ancestor_ids(leaf_id, limit=settings.MAX_MESSAGES_PER_REQUEST)
