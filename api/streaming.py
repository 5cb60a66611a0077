"""The two stream transports: NDJSON (Ollama) and server-sent events (OpenAI).

Both reach the client token by token: each chunk is its own ASGI body message, nothing
compresses or buffers them (``X-Accel-Buffering: no`` tells nginx the same).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from django.http import StreamingHttpResponse

T = TypeVar("T")

NDJSON = "application/x-ndjson"
SSE = "text/event-stream; charset=utf-8"
SSE_DONE = b"data: [DONE]\n\n"


def dumps(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def ndjson_line(payload: Any) -> bytes:
    return (dumps(payload) + "\n").encode()


def sse_event(payload: Any) -> bytes:
    return f"data: {dumps(payload)}\n\n".encode()


def stream_response(chunks: AsyncIterator[bytes], content_type: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type=content_type)
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


async def prime(items: AsyncIterator[T]) -> AsyncIterator[T]:
    """Take the first item now, so that a failure before it is raised here, while a real
    status code can still be sent; returns an iterator over all the items."""
    try:
        first = await anext(items)
    except StopAsyncIteration:
        return _nothing()
    return _chain(first, items)


async def _nothing() -> AsyncIterator[Any]:
    return
    yield


async def _chain(first: T, rest: AsyncIterator[T]) -> AsyncIterator[T]:
    try:
        yield first
        async for item in rest:
            yield item
    finally:
        # Closing this stream closes the one underneath (and so the engine request).
        aclose = getattr(rest, "aclose", None)
        if aclose is not None:
            await aclose()
