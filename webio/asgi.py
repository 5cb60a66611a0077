"""ASGI helpers that run before Django sees a request."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .outages import CLOSE_TRY_AGAIN, is_outage

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def body_limit(app: App, *, max_bytes: int, refusal: Callable[[Scope], tuple[int, bytes]]) -> App:
    """Refuse HTTP request bodies over ``max_bytes`` before the app reads them.

    Django reads a whole body into a temporary file before its own size check, so a client
    could make it write gigabytes. A declared ``Content-Length`` over the limit is answered at
    once with ``refusal(scope)`` (status, JSON body); a chunked body is cut off where it
    passes the limit (the app sees the client leave) and answered the same way.
    """

    async def limited(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > max_bytes:
                    await _answer(send, *refusal(scope))
                    return
                break
        received = 0
        over = False
        started = False

        async def counting_receive() -> dict[str, Any]:
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await app(scope, counting_receive, tracking_send)
        if over and not started:
            await _answer(send, *refusal(scope))

    return limited


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-content-type-options", b"nosniff"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def socket_guard(app: App) -> App:
    """Close a socket whose application failed because the database or Redis is unreachable
    with CLOSE_TRY_AGAIN (4503), which the browser answers by reconnecting. Without it, a
    failure during the handshake (the session lookup with PostgreSQL down) reaches the browser
    as a bare HTTP 500 it cannot read. Other failures are left to daphne (1011)."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await app(scope, receive, send)
            return
        state = {"accepted": False, "closed": False}

        async def tracking(message: dict[str, Any]) -> None:
            if message["type"] == "websocket.accept":
                state["accepted"] = True
            elif message["type"] == "websocket.close":
                state["closed"] = True
            await send(message)

        try:
            await app(scope, receive, tracking)
        except Exception as exc:
            if not is_outage(exc):
                raise
            logger.warning("socket %s closed: a service is unreachable (%s)", scope.get("path"), exc)
            if state["closed"]:
                return
            try:
                if not state["accepted"]:
                    await send({"type": "websocket.accept"})
                await send({"type": "websocket.close", "code": CLOSE_TRY_AGAIN})
            except Exception:  # the client left meanwhile
                return
            # Until the client has the close: an application that returns at once loses it.
            while (await receive())["type"] != "websocket.disconnect":
                pass

    return guarded
