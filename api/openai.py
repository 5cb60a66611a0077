"""The OpenAI-compatible API (``/v1/*``) on the shared core.

Streams are server-sent events ending in ``data: [DONE]``; a request without ``stream`` is
not streamed. The first delta carries ``role: "assistant"``, every chunk has ``choices``, and
the finish chunk carries ``usage`` (Chatbox reads token counts there). A client that asks
for ``stream_options.include_usage`` gets OpenAI's separate usage chunk instead, so that
clients which add usage up across chunks do not count it twice.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase

from accounts.models import UsageOutcome, UsageSource
from generation.run import GenerationRun
from inference.engines.base import ChatMessage
from models_admin.models import LLMModel
from models_admin.selectors import model_list_for_user

from .endpoint import ApiRequest, api_endpoint, parse_body
from .errors import ApiError, Protocol, error_body
from .generation import (
    base64_floats,
    collect,
    embed,
    guarded,
    message_content,
    prepare_run,
    resolve_model,
    resolve_target,
    start,
    usage,
)
from .schemas import ContentPart, ImageUrl, OpenAIChatRequest, OpenAICompletionRequest, OpenAIEmbeddingRequest, OpenAIMessage
from .streaming import SSE, SSE_DONE, ChunkTemplate, sse_event, stream_response

FINGERPRINT = "fp_platform"

endpoint = functools.partial(api_endpoint, Protocol.OPENAI)


def _error_event(message: str) -> bytes:
    return sse_event(error_body(Protocol.OPENAI, ApiError(500, message, code="engine_error")))


def _model_object(model: LLMModel) -> dict[str, Any]:
    return {"id": model.full_name, "object": "model", "created": int(model.created_at.timestamp()), "owned_by": "library"}


@endpoint("GET")
async def models(request: HttpRequest, api: ApiRequest) -> HttpResponseBase:
    usable = await api.run(lambda caller: model_list_for_user(user=caller.user))
    return JsonResponse({"object": "list", "data": [_model_object(model) for model in usable]})


@endpoint("GET")
async def model_detail(request: HttpRequest, api: ApiRequest, model_id: str) -> HttpResponseBase:
    model = await api.run(lambda caller: resolve_model(user=caller.user, name=model_id))
    return JsonResponse(_model_object(model))


# ---- Chat -----------------------------------------------------------------------------------


def _content(content: str | Sequence[ContentPart] | None) -> Any:
    """Text parts are joined; images are kept (for vision models); other parts (audio, files) are dropped."""
    if content is None or isinstance(content, str):
        return content or ""
    texts = [part.text for part in content if part.type == "text" and part.text]
    images = [
        part.image_url.url if isinstance(part.image_url, ImageUrl) else part.image_url
        for part in content
        if part.type == "image_url" and part.image_url
    ]
    return message_content("\n".join(texts), images)


def _messages(messages: Sequence[OpenAIMessage]) -> list[ChatMessage]:
    # "developer" is OpenAI's newer name for "system"; chat templates know only the latter.
    return [{"role": "system" if m.role == "developer" else m.role, "content": _content(m.content)} for m in messages]


class _Chunks:
    """The SSE chunks of one streamed answer (chat or text completion)."""

    def __init__(self, *, kind: str, model: str, include_usage: bool) -> None:
        self.kind = kind  # "chat.completion.chunk" or "text_completion"
        self.id = ("chatcmpl-" if kind.startswith("chat") else "cmpl-") + secrets.token_hex(12)
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage

    def template(self, choices: list[dict[str, Any]]) -> ChunkTemplate:
        """The per-token event, encoded once (see ``ChunkTemplate``)."""
        return ChunkTemplate(self._chunk(choices), sse=True)

    def event(self, choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
        return sse_event(self._chunk(choices, usage))

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": self.kind,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": FINGERPRINT,
            "choices": choices,
        }
        if usage is not None:
            chunk["usage"] = usage
        return chunk

    async def finish(self, run: GenerationRun, last_choice: dict[str, Any]) -> list[bytes]:
        await run.finish(UsageOutcome.COMPLETE)
        if not self.include_usage:
            return [self.event([last_choice], usage(run)), SSE_DONE]
        return [self.event([last_choice]), self.event([], usage(run)), SSE_DONE]


async def _chat_events(run: GenerationRun, chunks: _Chunks, texts: AsyncIterator[str]) -> AsyncIterator[bytes]:
    first = True
    delta_event = chunks.template([{"index": 0, "delta": {"content": ChunkTemplate.slot(0)}, "logprobs": None, "finish_reason": None}])
    async for text in texts:
        if first:
            first = False
            yield chunks.event([{"index": 0, "delta": {"role": "assistant", "content": text}, "logprobs": None, "finish_reason": None}])
        else:
            yield delta_event(text)
    last_delta: dict[str, Any] = {"role": "assistant", "content": ""} if first else {}
    for event in await chunks.finish(run, {"index": 0, "delta": last_delta, "logprobs": None, "finish_reason": run.done_reason}):
        yield event


@endpoint("POST")
async def chat_completions(request: HttpRequest, api: ApiRequest) -> HttpResponseBase:
    body = await parse_body(request, OpenAIChatRequest)
    run = await prepare_run(
        api, model=body.model, interface=UsageSource.OPENAI, messages=_messages(body.messages), requested=body.sampling
    )
    if not body.stream:
        text = await collect(run)
        return JsonResponse(
            {
                "id": "chatcmpl-" + secrets.token_hex(12),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.model,
                "system_fingerprint": FINGERPRINT,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "logprobs": None,
                        "finish_reason": run.done_reason,
                    }
                ],
                "usage": usage(run),
            }
        )
    texts = await start(run)
    chunks = _Chunks(kind="chat.completion.chunk", model=body.model, include_usage=body.include_usage)
    return stream_response(guarded(run, _chat_events(run, chunks, texts), _error_event), SSE)


# ---- Text completions -----------------------------------------------------------------------


async def _completion_events(run: GenerationRun, chunks: _Chunks, texts: AsyncIterator[str]) -> AsyncIterator[bytes]:
    text_event = chunks.template([{"index": 0, "text": ChunkTemplate.slot(0), "logprobs": None, "finish_reason": None}])
    async for text in texts:
        yield text_event(text)
    for event in await chunks.finish(run, {"index": 0, "text": "", "logprobs": None, "finish_reason": run.done_reason}):
        yield event


@endpoint("POST")
async def completions(request: HttpRequest, api: ApiRequest) -> HttpResponseBase:
    body = await parse_body(request, OpenAICompletionRequest)
    run = await prepare_run(
        api, model=body.model, interface=UsageSource.OPENAI, prompt=body.prompt_text, requested=body.sampling
    )
    if not body.stream:
        text = await collect(run)
        return JsonResponse(
            {
                "id": "cmpl-" + secrets.token_hex(12),
                "object": "text_completion",
                "created": int(time.time()),
                "model": body.model,
                "system_fingerprint": FINGERPRINT,
                "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": run.done_reason}],
                "usage": usage(run),
            }
        )
    texts = await start(run)
    chunks = _Chunks(kind="text_completion", model=body.model, include_usage=body.include_usage)
    return stream_response(guarded(run, _completion_events(run, chunks, texts), _error_event), SSE)


# ---- Embeddings -----------------------------------------------------------------------------


@endpoint("POST")
async def embeddings(request: HttpRequest, api: ApiRequest) -> HttpResponseBase:
    body = await parse_body(request, OpenAIEmbeddingRequest)
    if not body.inputs or not all(body.inputs):
        raise ApiError(400, "input must not be empty", code="invalid_request", param="input")
    target = await api.run(lambda caller: resolve_target(user=caller.user, name=body.model))
    result = await embed(
        user_id=api.user_id, target=target, source=UsageSource.OPENAI, inputs=body.inputs, dimensions=body.dimensions
    )
    encode = base64_floats if body.encoding_format == "base64" else list
    return JsonResponse(
        {
            "object": "list",
            "data": [
                {"object": "embedding", "index": index, "embedding": encode(vector)}
                for index, vector in enumerate(result.vectors)
            ],
            "model": body.model,
            "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
        }
    )
