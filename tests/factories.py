"""Test data shaped like the real thing (messages linked into a tree, the leaf set)."""

from __future__ import annotations

from typing import Any

from chat.models import Conversation, Message, Role


def add_messages(conversation: Conversation, *turns: tuple[str, str], parent: Message | None = None, **fields: Any) -> list[Message]:
    """Append ``(role, content)`` messages as one branch under ``parent`` (default: the current
    leaf) and make the last one the current leaf. User messages are by the conversation's owner."""
    if parent is None and conversation.current_leaf_id is not None:
        parent = Message.objects.get(pk=conversation.current_leaf_id)
    created = []
    for role, content in turns:
        parent = Message.objects.create(
            conversation=conversation,
            parent=parent,
            role=role,
            content=content,
            author_id=conversation.owner_id if role == Role.USER else fields.get("author_id"),
            **{k: v for k, v in fields.items() if k != "author_id"},
        )
        created.append(parent)
    if parent is not None:
        Conversation.objects.filter(pk=conversation.pk).update(current_leaf=parent)
        conversation.current_leaf = parent
    return created
