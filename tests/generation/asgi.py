"""Drive the real ASGI application over HTTP in-process, as daphne does: the response is
read message by message, and a client can hang up (``http.disconnect``) mid-answer."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from platform.asgi import application


class AsgiCall:
    def __init__(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, *, chunks: int = 0
    ) -> None:
        """``chunks``: send the body in that many pieces, without a Content-Length (chunked)."""
        raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        self._body = raw
        self._pieces = [raw[i : i + max(1, len(raw) // chunks)] for i in range(0, len(raw), max(1, len(raw) // chunks))] if chunks else [raw]
        self._body_sent = False
        self._gone = asyncio.Event()
        self._messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.received = b""
        self.complete = False
        header_list = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")]
        header_list += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        if raw and not chunks:
            header_list.append((b"content-length", str(len(raw)).encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": header_list,
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 80),
        }
        self.task = asyncio.get_running_loop().create_task(application(scope, self._receive, self._send))

    async def _receive(self) -> dict[str, Any]:
        if self._pieces:
            piece = self._pieces.pop(0)
            return {"type": "http.request", "body": piece, "more_body": bool(self._pieces)}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: dict[str, Any]) -> None:
        await self._messages.put(message)

    async def _next(self, timeout: float) -> None:
        message = await asyncio.wait_for(self._messages.get(), timeout)
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            self.received += message.get("body", b"")
            if not message.get("more_body", False):
                self.complete = True

    async def read_until(self, marker: bytes, *, timeout: float = 60) -> bytes:
        deadline = asyncio.get_running_loop().time() + timeout
        while marker not in self.received and not self.complete:
            await self._next(max(0.01, deadline - asyncio.get_running_loop().time()))
        return self.received

    async def read_all(self, *, timeout: float = 120) -> bytes:
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.complete:
            await self._next(max(0.01, deadline - asyncio.get_running_loop().time()))
        return self.received

    def json(self) -> Any:
        return json.loads(self.received)

    async def hang_up(self) -> None:
        """The client goes away: the server sees ``http.disconnect``."""
        self._gone.set()
        await asyncio.wait_for(self.task, 10)
