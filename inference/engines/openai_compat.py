"""Streaming client for OpenAI-compatible servers (vLLM, llama.cpp's listener, ...).

A model may be served by several servers (``ModelSpec.endpoints``, vLLM replicas): each
request goes to the reachable one with the fewest requests in flight from this process.
A server that refuses a connection or breaks a stream is taken out and probed again
(``GET /v1/models``) after ``retry_after`` seconds; a request that could not connect is
retried on the next server before anything was streamed, so a stopped replica costs no
answer.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing, asynccontextmanager
from typing import Any

import httpx
import orjson
from django.conf import settings
from django.utils.translation import gettext as _

from observability.context import request_id

from .base import (
    ChatMessage,
    Delta,
    Embeddings,
    Endpoint,
    Engine,
    EngineError,
    Final,
    GenerationOptions,
    ModelSpec,
    StreamEvent,
)

logger = logging.getLogger(__name__)

# One pooled client per event loop: httpx clients must not cross loops (tests run several).
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()


def http_client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.ENGINE_TIMEOUT, connect=5.0),
            # No keep-alive: llama.cpp's HTTP server gives each open connection a thread and
            # drops idle ones after 5 s, so pooled sockets either starve its threads or go
            # stale under us. A loopback connect costs well under a millisecond.
            limits=httpx.Limits(max_connections=1024, max_keepalive_connections=0),
        )
        _clients[loop] = client
    return client


async def _sse_data(response: httpx.Response) -> AsyncIterator[bytes]:
    """The ``data:`` payloads of a server-sent event stream, as bytes.

    The per-token path: raw reads split on newlines, no text decoding (orjson parses bytes),
    instead of httpx's line iterator, which decodes and re-splits every chunk."""
    pending = b""
    async for block in response.aiter_bytes():
        pending += block
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.startswith(b"data:"):
                yield line[5:].strip()
    if pending.startswith(b"data:"):
        yield pending[5:].strip()


async def _within_timeouts(frames: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The stream's frames, each within its time: ENGINE_FIRST_TOKEN_TIMEOUT for the first
    (the prompt may queue behind others and take a while to read), ENGINE_TOKEN_TIMEOUT
    between later ones. A server that accepts and then says nothing (a hung engine, a lost
    GPU) ends the answer with a clear error instead of holding the person for ENGINE_TIMEOUT."""
    wait = settings.ENGINE_FIRST_TOKEN_TIMEOUT
    between = settings.ENGINE_TOKEN_TIMEOUT
    first = True
    while True:
        try:
            async with asyncio.timeout(wait):
                frame = await anext(frames)
        except StopAsyncIteration:
            return
        except TimeoutError:
            logger.warning("engine sent nothing for %.1f s (%s)", wait, "first token" if first else "between tokens")
            if first:
                raise EngineError(_("The model server did not start answering in %(seconds)d seconds. Please try again in a moment.")
                                  % {"seconds": round(wait)}) from None
            raise EngineError(_("The model server stopped answering for %(seconds)d seconds; the answer is cut off here.")
                              % {"seconds": round(wait)}) from None
        first = False
        wait = between
        yield frame


def _unreachable(exc: Exception) -> EngineError:
    logger.warning("engine request failed: %r", exc)
    return EngineError(_("The model server is not responding. Please try again in a moment."))


class OpenAICompatEngine(Engine):
    """Talks the OpenAI HTTP protocol; subclasses decide which server a model lives on."""

    name = "vllm"
    # Seconds a failed server stays out before the next probe puts it back.
    retry_after = 10.0
    probe_timeout = 3.0

    def __init__(self) -> None:
        # Both only touched from event-loop code between awaits, so no lock is needed.
        self._in_flight: dict[str, int] = {}
        self._down_until: dict[str, float] = {}
        self._turn = itertools.count()

    def in_flight(self, url: str) -> int:
        """Requests this process has open on the server at ``url``."""
        return self._in_flight.get(url.rstrip("/"), 0)

    def is_down(self, url: str) -> bool:
        return url.rstrip("/") in self._down_until

    def mark_down(self, endpoint: Endpoint) -> None:
        url = endpoint.url.rstrip("/")
        if url not in self._down_until:
            logger.warning("taking %s out of rotation", url)
        self._down_until[url] = time.monotonic() + self.retry_after

    async def endpoint_for(self, spec: ModelSpec) -> Endpoint:
        """The reachable server with the fewest requests in flight (ties take turns)."""
        if not spec.endpoints:
            raise EngineError(_("No server is configured for model %(model)s.") % {"model": spec.key}, permanent=True)
        now = time.monotonic()
        up: list[Endpoint] = []
        for endpoint in spec.endpoints:
            until = self._down_until.get(endpoint.url.rstrip("/"))
            if until is None:
                up.append(endpoint)
            elif now >= until:
                if await self._probe(endpoint):
                    logger.info("%s is back in rotation", endpoint.url)
                    self._down_until.pop(endpoint.url.rstrip("/"), None)
                    up.append(endpoint)
                else:
                    self.mark_down(endpoint)
        if not up:
            raise EngineError(
                _("No server for model %(model)s is reachable. Please try again in a moment.") % {"model": spec.key}
            )
        fewest = min(self.in_flight(e.url) for e in up)
        ties = [e for e in up if self.in_flight(e.url) == fewest]
        return ties[next(self._turn) % len(ties)]

    async def _probe(self, endpoint: Endpoint) -> bool:
        try:
            response = await http_client().get(
                endpoint.url.rstrip("/") + "/v1/models", headers=self._headers(endpoint), timeout=self.probe_timeout
            )
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def _acquire(self, spec: ModelSpec) -> Endpoint:
        endpoint = await self.endpoint_for(spec)
        # No await between choosing and counting: concurrent requests see each other.
        url = endpoint.url.rstrip("/")
        self._in_flight[url] = self._in_flight.get(url, 0) + 1
        return endpoint

    def _release(self, spec: ModelSpec, endpoint: Endpoint) -> None:
        url = endpoint.url.rstrip("/")
        remaining = self._in_flight.get(url, 0) - 1
        if remaining > 0:
            self._in_flight[url] = remaining
        else:
            self._in_flight.pop(url, None)

    @asynccontextmanager
    async def _using(self, spec: ModelSpec) -> AsyncIterator[Endpoint]:
        """An endpoint for one request, counted in flight until the block ends."""
        endpoint = await self._acquire(spec)
        try:
            yield endpoint
        finally:
            self._release(spec, endpoint)

    def _headers(self, endpoint: Endpoint) -> dict[str, str]:
        # The request id of the web request or socket this answer serves: vLLM logs it, so
        # one id follows a request from the web node's log to the engine's.
        headers = {"X-Request-ID": request_id.get()}
        if endpoint.api_key:
            headers["Authorization"] = f"Bearer {endpoint.api_key}"
        return headers

    def _body(self, spec: ModelSpec, options: GenerationOptions) -> dict[str, Any]:
        # The model's defaults are already in ``options`` (``generation_options``).
        body = options.as_openai()
        body["model"] = spec.upstream
        return body

    async def stream_chat(
        self, spec: ModelSpec, messages: Sequence[ChatMessage], options: GenerationOptions
    ) -> AsyncIterator[StreamEvent]:
        body = self._body(spec, options)
        body["messages"] = list(messages)
        if messages and messages[-1].get("role") == "assistant" and spec.backend == "vllm":
            # "Continue" an answer: vLLM extends the last assistant message instead of starting
            # a new turn. (llama.cpp's server does so by itself: it prefills a final
            # assistant message.)
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
        # aclosing: closing this iterator closes the inner one at once (request released,
        # connection closed), not whenever the garbage collector finalises it.
        async with aclosing(self._stream(spec, "/v1/chat/completions", body, chat=True)) as events:
            async for event in events:
                yield event

    async def stream_completion(
        self, spec: ModelSpec, prompt: str, options: GenerationOptions
    ) -> AsyncIterator[StreamEvent]:
        body = self._body(spec, options)
        body["prompt"] = prompt
        async with aclosing(self._stream(spec, "/v1/completions", body, chat=False)) as events:
            async for event in events:
                yield event

    async def _stream(
        self, spec: ModelSpec, path: str, body: dict[str, Any], *, chat: bool
    ) -> AsyncGenerator[StreamEvent, None]:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        finish_reason = "stop"
        usage: dict[str, Any] = {}
        timings: dict[str, Any] = {}
        completion_chunks = 0
        attempts = max(1, len(spec.endpoints))
        for attempt in range(attempts):
            async with self._using(spec) as endpoint:
                try:
                    # ``async with`` closes the connection when the caller stops iterating (Stop,
                    # client gone): the engine sees the disconnect and frees the slot.
                    async with http_client().stream(
                        "POST", endpoint.url.rstrip("/") + path, json=body, headers=self._headers(endpoint)
                    ) as response:
                        if response.status_code >= 400:
                            await response.aread()
                            raise self._http_error(spec, response)
                        async for data in _within_timeouts(_sse_data(response)):
                            if data == b"[DONE]":
                                break
                            chunk = orjson.loads(data)
                            if "error" in chunk:
                                error = chunk["error"]
                                message = error.get("message", "") if isinstance(error, dict) else error
                                raise EngineError(_("The model server reported an error: %(error)s") % {"error": message})
                            if chunk.get("usage"):
                                usage = chunk["usage"]
                            if chunk.get("timings"):
                                timings = chunk["timings"]
                            for choice in chunk.get("choices") or ():
                                text = (choice.get("delta") or {}).get("content") if chat else choice.get("text")
                                if text:
                                    completion_chunks += 1
                                    yield Delta(text)
                                if choice.get("finish_reason"):
                                    finish_reason = "length" if choice["finish_reason"] == "length" else "stop"
                except httpx.ConnectError as exc:
                    self.mark_down(endpoint)
                    # Nothing was sent to the client yet: another replica can answer instead.
                    if attempt + 1 < attempts:
                        continue
                    raise _unreachable(exc) from exc
                except httpx.TransportError as exc:
                    self.mark_down(endpoint)
                    raise _unreachable(exc) from exc
                except orjson.JSONDecodeError as exc:
                    raise _unreachable(exc) from exc
            break
        yield Final(
            finish_reason=finish_reason,  # type: ignore[arg-type]
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", completion_chunks)),
            prompt_seconds=float(timings.get("prompt_ms", 0.0)) / 1000,
            generation_seconds=float(timings.get("predicted_ms", 0.0)) / 1000,
        )

    def _http_error(self, spec: ModelSpec, response: httpx.Response) -> EngineError:
        try:
            detail = response.json().get("error", {})
            message = detail.get("message", "") if isinstance(detail, dict) else str(detail)
        except ValueError:
            message = response.text[:200]
        if response.status_code == 400:
            return EngineError(message or _("The model server rejected the request."), permanent=True, status=400)
        if response.status_code == 404:
            return EngineError(
                _("The model server does not serve %(model)s.") % {"model": spec.upstream}, permanent=True, status=404
            )
        return EngineError(_("The model server failed: %(error)s") % {"error": message or response.status_code})

    async def count_tokens(self, spec: ModelSpec, text: str) -> int:
        try:
            async with self._using(spec) as endpoint:
                # vLLM's /tokenize takes {model, prompt}; llama.cpp's takes {content}.
                response = await http_client().post(
                    endpoint.url.rstrip("/") + "/tokenize",
                    json={"model": spec.upstream, "prompt": text, "add_special_tokens": False},
                    headers=self._headers(endpoint),
                )
        except httpx.TransportError as exc:
            raise _unreachable(exc) from exc
        if response.status_code != 200:
            # Servers without a tokenizer route: a safe over-estimate (a token is at least a byte).
            return len(text.encode())
        payload = response.json()
        return int(payload.get("count", len(payload.get("tokens", []))))

    async def embed(self, spec: ModelSpec, inputs: Sequence[str]) -> Embeddings:
        try:
            async with self._using(spec) as endpoint:
                response = await http_client().post(
                    endpoint.url.rstrip("/") + "/v1/embeddings",
                    json={"model": spec.upstream, "input": list(inputs), "encoding_format": "float"},
                    headers=self._headers(endpoint),
                )
        except httpx.TransportError as exc:
            raise _unreachable(exc) from exc
        if response.status_code >= 400:
            raise self._http_error(spec, response)
        payload = response.json()
        rows = sorted(payload["data"], key=lambda row: row.get("index", 0))
        return Embeddings(
            vectors=[row["embedding"] for row in rows],
            prompt_tokens=int(payload.get("usage", {}).get("prompt_tokens", 0)),
        )

    async def health(self, spec: ModelSpec) -> bool:
        try:
            async with self._using(spec) as endpoint:
                response = await http_client().get(
                    endpoint.url.rstrip("/") + "/v1/models", headers=self._headers(endpoint), timeout=5.0
                )
        except (httpx.TransportError, EngineError):
            return False
        return response.status_code == 200

