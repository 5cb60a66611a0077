"""What every chat request goes through, from the browser or the API: option ceilings,
the model's system prompt, and the context limit."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from .engines import Engine, EngineError, ModelSpec, engine_for
from .engines.base import ChatMessage, GenerationOptions, StreamEvent

# Chat templates add a few special tokens around each message.
_TEMPLATE_TOKENS_PER_MESSAGE = 8
# Tokenizer calls one request may cause while fitting its history: one to learn how many
# tokens this text has per byte, then at most two checks of the shortened history. Never
# one per message: a request with thousands of messages once froze the web process.
MAX_TOKENIZE_CALLS = 3


def generation_options(
    *, spec: ModelSpec, requested: Mapping[str, Any], model_max_tokens: int | None = None
) -> GenerationOptions:
    """Engine options for one request: the model's defaults, then what the request asked for
    (engine names, validated by ``inference.parameters``), with the answer length capped by
    what the administrator allows and what the context leaves."""
    ceiling = min(model_max_tokens or settings.MAX_TOKENS_CEILING, settings.MAX_TOKENS_CEILING)
    # Leave room for at least a short prompt in the context.
    ceiling = max(1, min(ceiling, spec.context_length - 16))
    sampling = {**dict(spec.defaults), **requested}
    wanted = sampling.pop("max_tokens", None)
    if wanted is None or int(wanted) <= 0:
        max_tokens = min(settings.DEFAULT_MAX_TOKENS, ceiling)
    else:
        max_tokens = min(int(wanted), ceiling)
    return GenerationOptions(max_tokens=max_tokens, sampling=sampling)


def with_system_prompt(messages: Sequence[ChatMessage], system_prompt: str) -> list[ChatMessage]:
    """Prepend the model's system prompt unless the conversation brings its own."""
    if not system_prompt or any(m.get("role") == "system" for m in messages):
        return list(messages)
    return [{"role": "system", "content": system_prompt}, *messages]


def text_of(message: ChatMessage) -> str:
    content = message.get("content") or ""
    if isinstance(content, str):
        return content
    return "\n".join(str(part.get("text") or "") for part in content if isinstance(part, dict) and part.get("type") == "text")


@dataclass(frozen=True)
class FittedPrompt:
    messages: list[ChatMessage]
    # The prompt's tokens where they were counted (the history had to be shortened), else None.
    tokens: int | None


def _too_long(*, tokens: int, spec: ModelSpec, max_tokens: int) -> EngineError:
    return EngineError(
        _(
            "The message is too long for this model: about %(tokens)d tokens. A chat with it holds "
            "%(context)d tokens, of which %(answer)d are kept for the answer."
        )
        % {"tokens": tokens, "context": spec.context_length, "answer": max_tokens},
        permanent=True,
        status=400,
    )


def _keep_newest(
    messages: Sequence[ChatMessage], sizes: Sequence[float], budget: float
) -> tuple[list[ChatMessage], list[float]] | None:
    """Drop the oldest turns until ``sizes`` add up to ``budget``; system messages and the
    last turn stay. None when even those do not fit."""
    keep = list(zip(messages, sizes, strict=True))
    total = sum(sizes)
    index = 0
    while total > budget:
        while index < len(keep) - 1 and keep[index][0].get("role") == "system":
            index += 1
        if index >= len(keep) - 1:
            return None
        total -= keep.pop(index)[1]
    return [m for m, _size in keep], [size for _m, size in keep]


def _byte_size(message: ChatMessage) -> int:
    """An upper bound of a message's tokens: a token is at least one byte."""
    return len(text_of(message).encode()) + _TEMPLATE_TOKENS_PER_MESSAGE


def _joined(messages: Sequence[ChatMessage]) -> str:
    return "\n".join(text_of(m) for m in messages)


async def fit_context(
    *, engine: Engine, spec: ModelSpec, messages: Sequence[ChatMessage], max_tokens: int
) -> FittedPrompt:
    """Drop the oldest turns until the prompt fits; system messages and the last turn stay.

    At most ``MAX_TOKENIZE_CALLS`` engine calls, whatever the number of messages: the whole
    history is counted once to learn its tokens per byte, turns are dropped by that
    estimate, and the result is checked (and, if the estimate was low, shortened once more).
    """
    budget = spec.context_length - max_tokens
    byte_sizes = [_byte_size(m) for m in messages]
    # Fast path, no engine call: a token is at least one byte, so a prompt whose byte count
    # fits cannot overflow.
    if sum(byte_sizes) <= budget:
        return FittedPrompt(list(messages), None)
    overhead = _TEMPLATE_TOKENS_PER_MESSAGE * len(messages)
    counted = await engine.count_tokens(spec, _joined(messages)) + overhead
    per_byte = counted / max(1, sum(byte_sizes))
    candidates, sizes = list(messages), [size * per_byte for size in byte_sizes]
    for _call in range(MAX_TOKENIZE_CALLS - 1):
        kept = _keep_newest(candidates, sizes, budget)
        if kept is None:
            raise _too_long(tokens=math.ceil(sizes[-1]) if candidates else counted, spec=spec, max_tokens=max_tokens)
        candidates, sizes = kept
        tokens = await engine.count_tokens(spec, _joined(candidates)) + _TEMPLATE_TOKENS_PER_MESSAGE * len(candidates)
        if tokens <= budget:
            return FittedPrompt(candidates, tokens)
        if len(candidates) == 1 or all(m.get("role") == "system" for m in candidates[:-1]):
            raise _too_long(tokens=tokens, spec=spec, max_tokens=max_tokens)
        # The estimate was low for these turns: rescale it to what was measured, which
        # drops at least one more turn on the next round.
        scale = tokens / max(1.0, sum(sizes))
        sizes = [size * scale for size in sizes]
    # Still over after the allowed calls: fall back to the byte bound, which cannot overflow.
    kept_by_bytes = _keep_newest(candidates, [_byte_size(m) for m in candidates], budget)
    if kept_by_bytes is None:
        raise _too_long(tokens=counted, spec=spec, max_tokens=max_tokens)
    return FittedPrompt(kept_by_bytes[0], None)


async def chat_stream(
    *, spec: ModelSpec, messages: Sequence[ChatMessage], options: GenerationOptions
) -> tuple[AsyncIterator[StreamEvent], FittedPrompt]:
    """The one way a chat reaches an engine: the history fitted to the context, then
    streamed. Closing the returned iterator cancels the engine request."""
    engine = engine_for(spec)
    fitted = await fit_context(engine=engine, spec=spec, messages=messages, max_tokens=options.max_tokens)
    return engine.stream_chat(spec, fitted.messages, options), fitted
