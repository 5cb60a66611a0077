"""Helpers for driving the chat socket through the real ASGI application."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AbstractBaseUser
from django.db.backends.utils import CursorWrapper
from django.test import Client

from platform.asgi import application


@sync_to_async
def session_cookie(user: AbstractBaseUser) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def connect(user: AbstractBaseUser | None, conversation_id: object) -> tuple[WebsocketCommunicator, bool]:
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if user is not None:
        headers.append((b"cookie", f"sessionid={await session_cookie(user)}".encode()))
    communicator = WebsocketCommunicator(application, f"/ws/c/{conversation_id}/", headers=headers)
    connected, _subprotocol = await communicator.connect(timeout=10)
    if connected:
        # The first frame on every conversation socket says what this user may do there.
        first = json.loads(await communicator.receive_from(timeout=10))
        assert first["type"] == "access", first
    return communicator, connected


async def receive_until(
    communicator: WebsocketCommunicator, kind: str, *, timeout: float = 60
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Collect events until one of type ``kind``; returns it and everything before it."""
    seen: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        event = json.loads(await communicator.receive_from(timeout=max(remaining, 0.01)))
        if event["type"] == kind:
            return event, seen
        seen.append(event)


def apply_deltas(events: list[dict[str, Any]], text: str = "") -> str:
    """What a browser shows after these events (the rule of mergeDelta in static/js/chat/store.js)."""
    for event in events:
        if event["type"] == "snapshot":
            text = event["text"]
        elif event["type"] == "delta" and event["start"] <= len(text):
            text = text[: event["start"]] + event["text"]
    return text


class QueryCounter:
    def __init__(self) -> None:
        self.count = 0
        self.statements: list[str] = []
        self._lock = threading.Lock()


@contextmanager
def count_queries() -> Iterator[QueryCounter]:
    """Count SQL statements from every thread (the consumer's ORM runs in a worker thread)."""
    counter = QueryCounter()
    original = CursorWrapper._execute_with_wrappers

    def counting(self: CursorWrapper, sql: str, params: Any, many: bool, executor: Any) -> Any:
        with counter._lock:
            counter.count += 1
            counter.statements.append(sql)
        return original(self, sql, params, many, executor)

    CursorWrapper._execute_with_wrappers = counting  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        CursorWrapper._execute_with_wrappers = original  # type: ignore[method-assign]
