"""The API's side of ``generation.run``, shared by both protocols: refusals and engine
failures as API errors, the first text awaited before the status line, streams that always
finish their run (usage recorded exactly once), and the protocols' token and time figures.
"""

from __future__ import annotations

import base64
import logging
import math
import struct
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from django.contrib.auth.models import AbstractBaseUser

from accounts.models import UsageOutcome, UsageSource
from accounts.services import usage_record
from generation.run import GenerationRefused, GenerationRun, outcome_of, prepare
from inference.engines import engine_for
from inference.engines.base import ChatMessage, EngineError, ModelSpec
from models_admin.models import LLMModel
from models_admin.selectors import ModelNotFound, get_model_for_user, model_spec

from .endpoint import ApiRequest, Caller
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


def refusal(exc: GenerationRefused) -> ApiError:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return ApiError(exc.status, exc.message, code=exc.code, param="model" if exc.status == 404 else None, headers=headers)


async def prepare_run(
    api: ApiRequest,
    *,
    model: str,
    interface: UsageSource,
    messages: Sequence[ChatMessage] | None = None,
    prompt: str | None = None,
    requested: Mapping[str, Any] | None = None,
) -> GenerationRun:
    """Authenticate and prepare the generation in one database trip (``generation.run``)."""
    if not model:
        raise ApiError(400, "model is required", code="invalid_request", param="model")

    def work(caller: Caller) -> GenerationRun:
        try:
            return prepare(
                user=caller.user, model=model, interface=interface, messages=messages, prompt=prompt, requested=requested
            )
        except GenerationRefused as exc:
            raise (model_not_found(model) if exc.status == 404 else refusal(exc)) from exc

    return await api.run(work)


async def start(run: GenerationRun) -> AsyncIterator[str]:
    """Run until the first text, so that failures up to then get a real status code."""
    try:
        return await prime(run.texts())
    except BaseException as exc:
        await run.finish(outcome_of(exc))
        if isinstance(exc, EngineError):
            raise engine_failure(exc) from exc
        raise


async def collect(run: GenerationRun) -> str:
    """The whole answer (non-streaming requests); usage is recorded before returning."""
    parts: list[str] = []
    try:
        async for text in run.texts():
            parts.append(text)
    except BaseException as exc:
        await run.finish(outcome_of(exc))
        if isinstance(exc, EngineError):
            raise engine_failure(exc) from exc
        raise
    await run.finish(UsageOutcome.COMPLETE)
    return "".join(parts)


def _ns(seconds: float) -> int:
    return max(0, int(seconds * 1e9))


def durations(run: GenerationRun) -> dict[str, int]:
    """Ollama's metrics, in nanoseconds."""
    ended = run.ended_at or time.perf_counter()
    # Time before the engine began on the prompt: queueing and (first use) loading.
    waited = (
        (run.first_text_at or ended)
        - run.started_at
        - run.prompt_seconds
        - run.generation_seconds / max(1, run.completion_tokens)
    )
    return {
        "total_duration": _ns(ended - run.started_at),
        "load_duration": _ns(waited),
        "prompt_eval_count": run.prompt_tokens,
        "prompt_eval_duration": _ns(run.prompt_seconds),
        "eval_count": run.completion_tokens,
        "eval_duration": _ns(run.generation_seconds),
    }


def usage(run: GenerationRun) -> dict[str, int]:
    """OpenAI's usage object."""
    return {
        "prompt_tokens": run.prompt_tokens,
        "completion_tokens": run.completion_tokens,
        "total_tokens": run.prompt_tokens + run.completion_tokens,
    }


async def guarded(
    run: GenerationRun, chunks: AsyncIterator[bytes], error_chunk: Callable[[str], bytes]
) -> AsyncIterator[bytes]:
    """``chunks`` as they come; a failure mid-stream ends the stream with ``error_chunk(message)``
    (the status line is long gone). The formatters finish the run (usage recorded) before
    their last chunk, so a client that has the whole answer finds it recorded; a client that
    left, or an engine that failed, gets it recorded here as the stream closes."""
    ending: BaseException | None = None
    try:
        async for chunk in chunks:
            yield chunk
    except EngineError as exc:
        ending = exc
        await run.finish(outcome_of(exc))
        yield error_chunk(exc.message)
    except Exception as exc:
        ending = exc
        logger.exception("API stream for %s failed", run.model_name)
        await run.finish(outcome_of(exc))
        yield error_chunk("internal error")
    except BaseException as exc:  # GeneratorExit, CancelledError: the client went away
        ending = exc
        raise
    finally:
        # Deterministically, not whenever the garbage collector finalises the generators:
        # finishing closes the engine request. A no-op when a formatter already finished.
        await run.finish(outcome_of(ending))


def message_content(text: str, image_urls: Sequence[str]) -> Any:
    """A message's content for the engine: plain text, or OpenAI parts when it has images
    (``generation.run`` keeps them for vision models only)."""
    if not image_urls:
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

