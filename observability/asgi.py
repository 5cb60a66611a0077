"""The ASGI wrapper in front of everything (platform/asgi.py): a request id per HTTP request
and per WebSocket connection, ``X-Request-ID`` on every response, and the HTTP and socket
metrics. Pure ASGI: no thread hop, a few microseconds per request."""

from __future__ import annotations

import re
import time
from functools import lru_cache
from typing import Any

from django.urls import Resolver404, resolve

from .context import accepted_or_new, request_id
from .metrics import http_duration, http_requests, sockets_open

_ID_SEGMENT = re.compile(r"/(?:[0-9a-fA-F-]{32,36}|\d+)(?=/|$)")


@lru_cache(maxsize=4096)
def http_route(path: str) -> str:
    """The URL name a path resolves to ("api-tags", "conversation"), or its pattern when it has
    no name, so that labels stay few whatever ids the paths carry; "unmatched" for a 404 path."""
    if path.startswith("/static/"):
        return "static"
    try:
        match = resolve(path)
    except Resolver404:
        return "unmatched"
    return match.view_name or match.route or "unmatched"


def socket_route(path: str) -> str:
    return _ID_SEGMENT.sub("/:id", path)


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def observed(app: Any) -> Any:
    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await app(scope, receive, send)
            return
        rid = accepted_or_new(_header(scope, b"x-request-id"))
        token = request_id.set(rid)
        try:
            if kind == "http":
                await _http(app, scope, receive, send, rid)
            else:
                await _socket(app, scope, receive, send)
        finally:
            request_id.reset(token)

    return wrapped


async def _http(app: Any, scope: dict[str, Any], receive: Any, send: Any, rid: str) -> None:
    started = time.perf_counter()
    status = 500  # if the application fails before it answers

    async def sending(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            message = {**message, "headers": [*message.get("headers", ()), (b"x-request-id", rid.encode())]}
        await send(message)

    try:
        await app(scope, receive, sending)
    finally:
        route = http_route(scope["path"])
        http_requests.labels(route, scope.get("method", ""), str(status)).inc()
        http_duration.labels(route).observe(time.perf_counter() - started)


async def _socket(app: Any, scope: dict[str, Any], receive: Any, send: Any) -> None:
    gauge = sockets_open.labels(socket_route(scope["path"]))
    accepted = False

    async def sending(message: dict[str, Any]) -> None:
        nonlocal accepted
        if message["type"] == "websocket.accept" and not accepted:
            accepted = True
            gauge.inc()
        await send(message)

    try:
        await app(scope, receive, sending)
    finally:
        if accepted:
            gauge.dec()
