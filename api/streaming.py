"""The two stream transports: NDJSON (Ollama) and server-sent events (OpenAI).

Both reach the client token by token: each chunk is its own ASGI body message, nothing
compresses or buffers them (``X-Accel-Buffering: no`` tells nginx the same).
"""

from __future__ import annotations

import orjson
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from django.http import StreamingHttpResponse

T = TypeVar("T")

NDJSON = "application/x-ndjson"
SSE = "text/event-stream; charset=utf-8"
SSE_DONE = b"data: [DONE]\n\n"


def dumps(payload: Any) -> bytes:
    # orjson: several times faster than json on the per-token path, UTF-8 out, compact.
    return orjson.dumps(payload)


def ndjson_line(payload: Any) -> bytes:
    return orjson.dumps(payload, option=orjson.OPT_APPEND_NEWLINE)


def sse_event(payload: Any) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


class ChunkTemplate:
    """A protocol's per-token chunk with everything but its varying strings encoded once per
    answer: a token then costs a string encode per slot and a join, not a dict and a dump.

    ``sample`` is the chunk as a dict holding ``slot(0)``, ``slot(1)``, ... where the
    per-token strings go, in that order of appearance."""

    def __init__(self, sample: Any, *, sse: bool) -> None:
        encoded = orjson.dumps(sample)
        parts: list[bytes] = []
        index = 0
        while True:
            marker = orjson.dumps(self.slot(index))
            before, found, encoded = encoded.partition(marker)
            parts.append(before)
            if not found:
                break
            index += 1
        if index == 0:
            raise ValueError("the sample has no slot")
        parts[0] = (b"data: " if sse else b"") + parts[0]
        parts[-1] = parts[-1] + (b"\n\n" if sse else b"\n")
        self._parts = parts

    @staticmethod
    def slot(index: int) -> str:
        return f"\x00slot{index}\x00"

    def __call__(self, *values: str) -> bytes:
        out = [self._parts[0]]
        for value, part in zip(values, self._parts[1:], strict=True):
            out.append(orjson.dumps(value))
            out.append(part)
        return b"".join(out)


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
