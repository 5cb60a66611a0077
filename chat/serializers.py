from __future__ import annotations

from typing import Any

from .models import Message


def message_payload(message: Message) -> dict[str, Any]:
    """A message as the browser sees it (socket events and the page's initial data)."""
    return {
        "id": message.id,
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "error": message.error,
        "model": message.model_name,
        "created_at": message.created_at.isoformat() if message.created_at else None,
    }
