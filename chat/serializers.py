from __future__ import annotations

from typing import Any

from .models import Conversation, Message
from .tree import Thread


def message_payload(message: Message, siblings: list[int] | None = None) -> dict[str, Any]:
    """A message as the browser sees it (socket events and the page's initial data).

    ``siblings``: the ids of this message and its siblings, oldest first (‹ 1/2 ›).
    """
    return {
        "id": message.id,
        "parent_id": message.parent_id,
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "error": message.error,
        "model": message.model_name,
        "author": message.author.get_username() if message.author_id and message.author else "",
        "cut_off": message.cut_off,
        "siblings": siblings if siblings is not None else [message.id],
        "created_at": message.created_at.isoformat() if message.created_at else None,
    }


def thread_payload(thread: Thread) -> list[dict[str, Any]]:
    return [message_payload(m, thread.siblings.get(m.id)) for m in thread.path]


def conversation_payload(conversation: Conversation) -> dict[str, Any]:
    project = conversation.project if conversation.project_id else None
    return {
        "id": str(conversation.id),
        "title": conversation.title,
        "pinned": conversation.pinned,
        "archived": conversation.archived,
        "updated_at": conversation.updated_at.isoformat(),
        "project": {"id": str(project.id), "name": project.name} if project else None,
    }
