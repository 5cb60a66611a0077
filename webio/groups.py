"""Channel-layer groups every app may address, and sending to them after a commit.

Lives at the bottom layer so that any app (projects, accounts, chat) can tell a user's open
sockets that something changed without importing the chat app above it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

#: Tells a socket to re-check its user's access (a share, a membership or a project changed).
ACCESS_CHANGED: dict[str, str] = {"type": "access.changed"}


def user_group(user_id: object) -> str:
    """Every open socket of one user."""
    return f"user.{user_id}"


def relay(payload: dict[str, Any]) -> dict[str, str]:
    """A channel-layer event carrying a pre-serialised socket frame (serialised once, not per socket)."""
    return {"type": "chat.relay", "text": orjson.dumps(payload).decode()}


def _send(groups: Iterable[str], event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    send = async_to_sync(layer.group_send)
    for group in groups:
        send(group, event)


def after_commit(groups: Iterable[str], event: dict[str, Any]) -> None:
    """Send ``event`` to ``groups`` once the current transaction commits (sync code only):
    no tab hears of a change that rolled back."""
    targets = list(groups)
    transaction.on_commit(lambda: _send(targets, event))


def access_changed_for(user_ids: Iterable[object]) -> None:
    """After commit, every open socket of these users re-checks what it may still do."""
    after_commit([user_group(u) for u in user_ids], ACCESS_CHANGED)
