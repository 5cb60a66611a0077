"""The engine call behind every generating API route, shared by both protocols.

The same path as the browser's chat (``chat/generation.py``): the model's access check,
the administrator's max-token ceiling, the model's system prompt, the context limit, one
engine stream. Closing the stream (a client that went away) closes the engine request, and
so frees the engine's slot. Usage is recorded once per request, after the stream.
"""

from __future__ import annotations

import base64
import logging
import math
import struct
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from channels.db import database_sync_to_async
from django.contrib.auth.models import AbstractBaseUser

from inference.engines import engine_for
from inference.engines.base import ChatMessage, EngineError, Final, ModelSpec, StreamEvent
from accounts.models import UsageSource
from inference.prompting import chat_stream, generation_options, with_system_prompt
from accounts.services import usage_record
from models_admin.models import LLMModel
from models_admin.selectors import ModelNotFound, get_model_for_user, model_spec

from .errors import ApiError, model_not_found
from .streaming import prime

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """A model the caller may use, read from the database before the first byte."""

    model: LLMModel
    spec: ModelSpec

    @property
    def name(self) -> str:
        return self.model.full_name

    @property
    def vision(self) -> bool:
        return "vision" in (self.model.capabilities or [])


def resolve_model(*, user: AbstractBaseUser, name: str) -> LLMModel:
    """The model called ``name`` (``x`` is ``x:latest``) if ``user`` may use it, else 404."""
    if not name:
        raise ApiError(400, "model is required", code="invalid_request", param="model")
    try:
        return get_model_for_user(user=user, name=name)
    except ModelNotFound as exc:
        raise model_not_found(name) from exc


def resolve_target(*, user: AbstractBaseUser, name: str) -> Target:
    model = resolve_model(user=user, name=name)
    return Target(model=model, spec=model_spec(model))


def engine_failure(exc: EngineError) -> ApiError:
    """An engine failure before the first byte, with its own status (400, 404, 503...)."""
    return ApiError(exc.status if 400 <= exc.status < 600 else 503, exc.message, code="engine_error")


def _ns(seconds: float) -> int:
    return max(0, int(seconds * 1e9))


class EngineRun:
    """One API request's engine stream: text as it comes, then the totals; usage recorded once."""

    def __init__(
        self,
        *,
        user_id: int,
        target: Target,
        source: UsageSource,
        requested: Mapping[str, Any],
        messages: Sequence[ChatMessage] | None = None,
        prompt: str | None = None,
    ) -> None:
        self.target = target
        self.user_id = user_id
        self.source = source
        self.options = generation_options(
            spec=target.spec, requested=requested, model_max_tokens=target.model.max_tokens
        )
        # Raw completions (a prompt) bypass the chat template and so the system prompt too.
        self._messages = with_system_prompt(messages, target.model.system_prompt) if messages is not None else None
        self._prompt = prompt or ""
        self.final: Final | None = None
        self.chunks = 0
        self._started = time.perf_counter()
        self._first_text_at: float | None = None
        self._ended_at: float | None = None
        self._recorded = False
        self._stream: AsyncGenerator[str, None] | None = None

    async def _events(self) -> AsyncIterator[StreamEvent]:
        spec = self.target.spec
        if self._messages is None:
            return engine_for(spec).stream_completion(spec, self._prompt, self.options)
        return await chat_stream(spec=spec, messages=self._messages, options=self.options)

    async def _texts(self) -> AsyncGenerator[str, None]:
        events = await self._events()
        try:
            async for event in events:
                if isinstance(event, Final):
                    self.final = event
                elif event.text:
                    if self._first_text_at is None:
                        self._first_text_at = time.perf_counter()
                    self.chunks += 1
                    yield event.text
        finally:
            self._ended_at = time.perf_counter()
            # Closing the engine's stream closes its HTTP request: the engine frees the slot.
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()

    async def start(self) -> AsyncIterator[str]:
        """Run until the first text, so that failures up to then get a real status code."""
        self._stream = self._texts()
        try:
            return await prime(self._stream)
        except EngineError as exc:
            raise engine_failure(exc) from exc

    async def close(self) -> None:
        """Stop the engine request if it is still running (the client went away)."""
        if self._stream is not None:
            await self._stream.aclose()

    async def collect(self) -> str:
        """The whole answer (non-streaming requests); usage is recorded before returning."""
        parts: list[str] = []
        try:
            async for text in self._texts():
                parts.append(text)
        except EngineError as exc:
            raise engine_failure(exc) from exc
        finally:
            await self.record_usage()
        return "".join(parts)

    async def record_usage(self) -> None:
        if self._recorded or (self.final is None and self.chunks == 0):
            return
        self._recorded = True
        await database_sync_to_async(usage_record)(
            user_id=self.user_id,
            model_name=self.target.name,
            source=self.source,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
        )

    @property
    def done_reason(self) -> Literal["stop", "length"]:
        return self.final.finish_reason if self.final else "stop"

    @property
    def prompt_tokens(self) -> int:
        return self.final.prompt_tokens if self.final else 0

    @property
    def completion_tokens(self) -> int:
        # Without a final event (the client left) the engine's chunks are its tokens.
        return self.final.completion_tokens if self.final else self.chunks

    def durations(self) -> dict[str, int]:
        """Ollama's metrics, in nanoseconds."""
        ended = self._ended_at or time.perf_counter()
        prompt_seconds = self.final.prompt_seconds if self.final else 0.0
        eval_seconds = self.final.generation_seconds if self.final else 0.0
        # Time before the engine began on the prompt: queueing and (first use) loading.
        waited = (self._first_text_at or ended) - self._started - prompt_seconds - eval_seconds / max(1, self.completion_tokens)
        return {
            "total_duration": _ns(ended - self._started),
            "load_duration": _ns(waited),
            "prompt_eval_count": self.prompt_tokens,
            "prompt_eval_duration": _ns(prompt_seconds),
            "eval_count": self.completion_tokens,
            "eval_duration": _ns(eval_seconds),
        }

    def usage(self) -> dict[str, int]:
        """OpenAI's usage object."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


async def guarded(run: EngineRun, chunks: AsyncIterator[bytes], error_chunk: Callable[[str], bytes]) -> AsyncIterator[bytes]:
    """``chunks`` as they come; a failure mid-stream ends the stream with ``error_chunk(message)``
    (the status line is long gone). Usage is recorded before the last chunk (the formatters do
    it before their final one), so a client that has the whole answer finds it recorded; a
    client that left gets it recorded as the stream closes."""
    try:
        async for chunk in chunks:
            yield chunk
    except EngineError as exc:
        await run.record_usage()
        yield error_chunk(exc.message)
    except Exception:
        logger.exception("API stream for %s failed", run.target.name)
        await run.record_usage()
        yield error_chunk("internal error")
    finally:
        # Deterministically, not whenever the garbage collector finalises the generators:
        # closing the run closes the engine request.
        await run.close()
        await run.record_usage()


def message_content(text: str, image_urls: Sequence[str], *, vision: bool) -> Any:
    """A message's content for the engine: plain text, or OpenAI parts when a vision model gets
    images. Models without vision get the text alone (their engines refuse images)."""
    if not (vision and image_urls):
        return text
    return [{"type": "text", "text": text}, *({"type": "image_url", "image_url": {"url": url}} for url in image_urls)]


async def load(target: Target) -> None:
    """Make sure the model is loaded (Ollama's "load" request: a chat with no messages)."""
    if not await engine_for(target.spec).health(target.spec):
        raise ApiError(503, f"model '{target.name}' could not be loaded", code="engine_error")


# ---- Embeddings ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbeddingResult:
    vectors: list[list[float]]
    prompt_tokens: int
    seconds: float


def _normalised(vector: Sequence[float], dimensions: int | None) -> list[float]:
    """L2-normalised, after cutting to ``dimensions`` (Ollama's rule for both)."""
    if dimensions is not None:
        vector = vector[:dimensions]
    norm = math.sqrt(math.fsum(x * x for x in vector))
    return [x / norm for x in vector] if norm > 0 else list(vector)


async def embed(
    *, user_id: int, target: Target, source: UsageSource, inputs: Sequence[str], dimensions: int | None = None
) -> EmbeddingResult:
    if not target.spec.embedding:
        raise ApiError(400, f"model '{target.name}' does not support embeddings", code="invalid_request", param="model")
    started = time.perf_counter()
    if not inputs:
        return EmbeddingResult(vectors=[], prompt_tokens=0, seconds=0.0)
    try:
        result = await engine_for(target.spec).embed(target.spec, inputs)
    except EngineError as exc:
        raise engine_failure(exc) from exc
    vectors = [_normalised(vector, dimensions) for vector in result.vectors]
    await database_sync_to_async(usage_record)(
        user_id=user_id, model_name=target.name, source=source, prompt_tokens=result.prompt_tokens, completion_tokens=0
    )
    return EmbeddingResult(vectors=vectors, prompt_tokens=result.prompt_tokens, seconds=time.perf_counter() - started)


def base64_floats(vector: Sequence[float]) -> str:
    """OpenAI's ``encoding_format: base64``: little-endian float32s."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()

