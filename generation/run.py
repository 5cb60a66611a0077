"""One generation run, the only way an answer is generated, from every interface.

The browser socket (``chat.generation``), ``/api/chat``, ``/api/generate``,
``/v1/chat/completions`` and ``/v1/completions`` all do the same three steps:

1. ``prepare(...)``, synchronously, inside the caller's one database trip: the request's
   bounds (``generation.limits``), the model access check, the token ceiling, the system
   prompt, and the user's quotas: tokens of the day and month, requests per minute, and a
   slot among their concurrent answers. Refusals are
   ``GenerationRefused`` with an HTTP-like status, before anything is stored or streamed.
2. ``run.texts()``: the context fit (a bounded number of tokenizer calls) and the engine
   stream, text by text. Closing the iterator closes the engine request, which frees the
   engine's slot.
3. ``await run.finish(outcome)``: the one usage rule. Exactly one usage record per run,
   whichever way it ended (complete, stopped, client gone, engine error), charged for
   what the engine produced; and the user's slot is given back. Later calls do nothing.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from functools import cached_property
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

from channels.db import database_sync_to_async
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction

from accounts.models import UsageOutcome, UsageSource
from accounts.services import usage_record
from inference.engines import engine_for
from inference.engines.base import ChatMessage, EngineError, Final, GenerationOptions, ModelSpec, StreamEvent
from inference.prompting import chat_stream, generation_options, text_of, with_system_prompt
from models_admin.models import LLMModel
from observability import metrics
from models_admin.selectors import ModelNotFound, get_model_for_user, model_spec

from .limits import GenerationRefused, UserSlot, check_prompt, check_quota, model_slot

logger = logging.getLogger(__name__)

__all__ = ["GenerationRefused", "GenerationRun", "UsageOutcome", "outcome_of", "prepare"]


def prepare(
    *,
    user: AbstractBaseUser | AnonymousUser,
    model: LLMModel | str,
    interface: UsageSource,
    messages: Sequence[ChatMessage] | None = None,
    prompt: str | None = None,
    requested: Mapping[str, Any] | None = None,
    project_id: uuid.UUID | str | None = None,
) -> GenerationRun:
    """Check and set up one answer. Runs database queries: call it from sync code.

    ``model`` is a name to resolve with the access check, or a model the caller has just
    fetched through that same check (``get_model_for_user``) in this database trip.
    ``messages`` is a chat; ``prompt`` a raw completion without the chat template.
    ``requested``: sampling options in engine names, validated by ``inference.parameters``.
    ``project_id``: the conversation's project (browser answers), recorded with the usage.
    """
    if (messages is None) == (prompt is None):
        raise ValueError("give either messages or prompt")
    if user.pk is None:
        raise ValueError("only a stored user can generate")
    user_id = int(user.pk)
    check_prompt(messages=messages, prompt=prompt)
    if isinstance(model, str):
        try:
            model = get_model_for_user(user=user, name=model)
        except ModelNotFound as exc:
            raise GenerationRefused(exc.args[0], status=404, code="model_not_found") from exc
    busy = model_slot(model.full_name)
    try:
        slot = check_quota(user_id=user_id).holding(busy)  # last: nothing after it can refuse
    except BaseException:
        busy.release()
        raise
    return GenerationRun(
        user_id=user_id,
        model=model,
        spec=model_spec(model),
        interface=interface,
        messages=for_model(messages, model) if messages is not None else None,
        prompt=prompt,
        requested=requested or {},
        slot=slot,
        project_id=project_id,
    )


def for_model(messages: Sequence[ChatMessage], model: LLMModel) -> list[ChatMessage]:
    """The messages as this model takes them: its system prompt unless the chat has one;
    images only for vision models (other engines refuse them), the text alone otherwise."""
    if "vision" not in (model.capabilities or []):
        messages = [m if isinstance(m.get("content"), str | None) else {**m, "content": text_of(m)} for m in messages]
    return with_system_prompt(messages, model.system_prompt)


class GenerationRun:
    """One answer being generated. See the module docstring for the three steps."""

    def __init__(
        self,
        *,
        user_id: int,
        model: LLMModel,
        spec: ModelSpec,
        interface: UsageSource,
        messages: list[ChatMessage] | None,
        prompt: str | None,
        requested: Mapping[str, Any],
        slot: UserSlot,
        project_id: uuid.UUID | str | None = None,
    ) -> None:
        self.user_id = user_id
        self.project_id = project_id
        self.model_name = model.full_name
        self.vision = "vision" in (model.capabilities or [])
        self.spec = spec
        self.interface = interface
        self.options: GenerationOptions = generation_options(
            spec=spec, requested=requested, model_max_tokens=model.max_tokens
        )
        self._messages = messages
        self._prompt = prompt or ""
        self._slot = slot
        self.final: Final | None = None
        self.chunks = 0
        self.started_at = time.perf_counter()
        self.first_text_at: float | None = None
        self.ended_at: float | None = None
        self._prompt_tokens_counted: int | None = None
        self._streamed = False
        self._finished = False
        self._stream: AsyncGenerator[str, None] | None = None

    # ---- Streaming --------------------------------------------------------------------------

    def texts(self) -> AsyncGenerator[str, None]:
        """The answer's text as the engine produces it (one iterator per run)."""
        if self._stream is None:
            self._stream = self._texts()
        return self._stream

    async def _events(self) -> Any:
        if self._messages is None:
            return engine_for(self.spec).stream_completion(self.spec, self._prompt, self.options)
        events, fitted = await chat_stream(spec=self.spec, messages=self._messages, options=self.options)
        self._prompt_tokens_counted = fitted.tokens
        return events

    async def _texts(self) -> AsyncGenerator[str, None]:
        self._streamed = True
        in_flight = metrics.generations_in_flight.labels(self.model_name, str(self.interface))
        in_flight.inc()
        try:
            events = await self._events()
        except BaseException:
            in_flight.dec()
            raise
        try:
            event: StreamEvent
            async for event in events:
                if isinstance(event, Final):
                    self.final = event
                elif event.text:
                    if self.first_text_at is None:
                        self.first_text_at = time.perf_counter()
                        metrics.time_to_first_token.labels(self.model_name).observe(self.first_text_at - self.started_at)
                    self.chunks += 1
                    yield event.text
        finally:
            in_flight.dec()
            self.ended_at = time.perf_counter()
            # Closing the engine's stream closes its HTTP request: the engine frees the slot.
            await events.aclose()

    async def close(self) -> None:
        """Stop the engine request if it is still running (Stop, or the client went away)."""
        if self._stream is not None:
            await self._stream.aclose()

    # ---- The one usage rule -------------------------------------------------------------------

    async def finish(self, outcome: UsageOutcome, *, also: Callable[[], None] | None = None) -> None:
        """Record this run's usage once, give back the user's slot, and run ``also`` (the
        browser's message write) in the same database transaction. Idempotent."""
        if self._finished:
            return
        self._finished = True
        self._slot.release()
        await self.close()
        record = self._streamed
        if record:
            self._observe(outcome)

        def write() -> None:
            with transaction.atomic():
                if record:
                    usage_record(
                        user_id=self.user_id,
                        model_name=self.model_name,
                        source=self.interface,
                        prompt_tokens=self.prompt_tokens,
                        completion_tokens=self.completion_tokens,
                        outcome=outcome,
                        project_id=self.project_id,
                    )
                if also is not None:
                    also()

        if record or also is not None:
            await _store_until_reachable(database_sync_to_async(write))

    def _observe(self, outcome: UsageOutcome) -> None:
        metrics.generations.labels(self.model_name, str(outcome)).inc()
        if self.first_text_at is not None and self.ended_at is not None and self.ended_at > self.first_text_at:
            after_first = self.completion_tokens - 1
            if after_first > 0:
                metrics.tokens_per_second.labels(self.model_name).observe(after_first / (self.ended_at - self.first_text_at))

    def discard(self) -> None:
        """Give the slot back for a run that never started (its request was rolled back)."""
        self._finished = True
        self._slot.release()

    # ---- What the protocols report --------------------------------------------------------------

    @property
    def done_reason(self) -> Literal["stop", "length"]:
        return self.final.finish_reason if self.final else "stop"

    @property
    def prompt_tokens(self) -> int:
        if self.final is not None and self.final.prompt_tokens:
            return self.final.prompt_tokens
        if self._prompt_tokens_counted is not None:
            return self._prompt_tokens_counted
        return self._prompt_estimate

    @cached_property
    def _prompt_estimate(self) -> int:
        # Engines report the prompt's tokens only at the end; an answer cut short is charged
        # an estimate (about four bytes a token in the languages these models serve).
        text = self._prompt if self._messages is None else "\n".join(text_of(m) for m in self._messages)
        return math.ceil(len(text.encode()) / 4)

    @property
    def completion_tokens(self) -> int:
        # Without a final event (stopped, client gone, engine error) the engine's chunks are
        # its tokens: both vLLM and llama.cpp stream one token per chunk.
        if self.final is not None:
            return self.final.completion_tokens
        return self.chunks

    @property
    def prompt_seconds(self) -> float:
        return self.final.prompt_seconds if self.final else 0.0

    @property
    def generation_seconds(self) -> float:
        return self.final.generation_seconds if self.final else 0.0


def outcome_of(exc: BaseException | None) -> UsageOutcome:
    """The ending that an exception out of a stream means (None: it completed)."""
    if exc is None:
        return UsageOutcome.COMPLETE
    if isinstance(exc, EngineError):
        return UsageOutcome.ERROR
    if not isinstance(exc, Exception):
        return UsageOutcome.CLIENT_GONE  # GeneratorExit, CancelledError: the caller went away
    return UsageOutcome.ERROR


async def _store_until_reachable(write: Callable[[], Awaitable[None]]) -> None:
    """Run the run's one write, retrying while the database is unreachable (PostgreSQL
    restarting, a failover) for up to GENERATION_STORE_RETRY_SECONDS: the answer's text lives
    only in this process until then. Any other error is raised at once."""
    deadline = time.monotonic() + settings.GENERATION_STORE_RETRY_SECONDS
    pause = 0.25
    while True:
        try:
            await write()
            return
        except (OperationalError, InterfaceError):
            if time.monotonic() + pause > deadline:
                raise
            logger.warning("the database is unreachable; retrying the answer's write in %.2f s", pause, exc_info=True)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)
