"""Streaming client for OpenAI-compatible servers (vLLM, llama.cpp's listener, ...)."""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
from django.conf import settings
from django.utils.translation import gettext as _

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
            limits=httpx.Limits(max_connections=512, max_keepalive_connections=128),
        )
        _clients[loop] = client
    return client


def _unreachable(exc: Exception) -> EngineError:
    logger.warning("engine request failed: %r", exc)
    return EngineError(_("The model server is not responding. Please try again in a moment."))


class OpenAICompatEngine(Engine):
    """Talks the OpenAI HTTP protocol; subclasses decide which server a model lives on."""

    name = "vllm"

    async def endpoint_for(self, spec: ModelSpec) -> Endpoint:
        if not spec.endpoints:
            raise EngineError(_("No server is configured for model %(model)s.") % {"model": spec.key}, permanent=True)
        return spec.endpoints[0]

    def _headers(self, endpoint: Endpoint) -> dict[str, str]:
        return {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}

    def _body(self, spec: ModelSpec, options: GenerationOptions) -> dict[str, Any]:
        body: dict[str, Any] = dict(spec.defaults)
        body.update(options.as_openai())
        body["model"] = spec.upstream
        return body

    async def stream_chat(
        self, spec: ModelSpec, messages: Sequence[ChatMessage], options: GenerationOptions
    ) -> AsyncIterator[StreamEvent]:
        body = self._body(spec, options)
        body["messages"] = list(messages)
        async for event in self._stream(spec, "/v1/chat/completions", body, chat=True):
            yield event

    async def stream_completion(
        self, spec: ModelSpec, prompt: str, options: GenerationOptions
    ) -> AsyncIterator[StreamEvent]:
        body = self._body(spec, options)
        body["prompt"] = prompt
        async for event in self._stream(spec, "/v1/completions", body, chat=False):
            yield event

    async def _stream(self, spec: ModelSpec, path: str, body: dict[str, Any], *, chat: bool) -> AsyncIterator[StreamEvent]:
        endpoint = await self.endpoint_for(spec)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        finish_reason = "stop"
        usage: dict[str, Any] = {}
        timings: dict[str, Any] = {}
        completion_chunks = 0
        try:
            # ``async with`` closes the connection when the caller stops iterating (Stop,
            # client gone): the engine sees the disconnect and frees the slot.
            async with http_client().stream(
                "POST", endpoint.url.rstrip("/") + path, json=body, headers=self._headers(endpoint)
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise self._http_error(spec, response)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    if "error" in chunk:
                        message = chunk["error"].get("message", "") if isinstance(chunk["error"], dict) else chunk["error"]
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
        except (httpx.TransportError, json.JSONDecodeError) as exc:
            raise _unreachable(exc) from exc
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
        endpoint = await self.endpoint_for(spec)
        try:
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
        endpoint = await self.endpoint_for(spec)
        try:
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
            endpoint = await self.endpoint_for(spec)
            response = await http_client().get(endpoint.url.rstrip("/") + "/v1/models", headers=self._headers(endpoint), timeout=5.0)
        except (httpx.TransportError, EngineError):
            return False
        return response.status_code == 200

