"""What every chat request goes through, from the browser or the API: option ceilings,
the model's system prompt, and the context limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from .engines import Engine, EngineError, ModelSpec, engine_for
from .engines.base import ChatMessage, GenerationOptions, StreamEvent

# Chat templates add a few special tokens around each message.
_TEMPLATE_TOKENS_PER_MESSAGE = 8


def generation_options(
    *, spec: ModelSpec, requested: Mapping[str, Any], model_max_tokens: int | None = None
) -> GenerationOptions:
    """Engine options from a request (OpenAI names), capped by what the admin allows."""
    ceiling = min(model_max_tokens or settings.MAX_TOKENS_CEILING, settings.MAX_TOKENS_CEILING)
    # Leave room for at least a short prompt in the context.
    ceiling = max(1, min(ceiling, spec.context_length - 16))
    wanted = requested.get("max_tokens")
    if wanted is None or int(wanted) <= 0:
        max_tokens = min(settings.DEFAULT_MAX_TOKENS, ceiling)
    else:
        max_tokens = min(int(wanted), ceiling)
    stop = requested.get("stop") or []
    if isinstance(stop, str):
        stop = [stop]
    options = GenerationOptions(max_tokens=max_tokens, stop=[str(s) for s in stop][:16])
    for name in ("temperature", "top_p", "min_p", "repeat_penalty", "presence_penalty", "frequency_penalty"):
        if requested.get(name) is not None:
            setattr(options, name, float(requested[name]))
    for name in ("top_k", "seed"):
        if requested.get(name) is not None:
            setattr(options, name, int(requested[name]))
    return options


def with_system_prompt(messages: Sequence[ChatMessage], system_prompt: str) -> list[ChatMessage]:
    """Prepend the model's system prompt unless the conversation brings its own."""
    if not system_prompt or any(m.get("role") == "system" for m in messages):
        return list(messages)
    return [{"role": "system", "content": system_prompt}, *messages]


def _text_of(message: ChatMessage) -> str:
    content = message.get("content") or ""
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in content if isinstance(part, dict))


async def fit_context(
    *, engine: Engine, spec: ModelSpec, messages: Sequence[ChatMessage], max_tokens: int
) -> list[ChatMessage]:
    """Drop the oldest turns until the prompt fits; system messages and the last turn stay."""
    budget = spec.context_length - max_tokens
    # Fast path, no engine call: a token is at least one byte, so a prompt whose byte count
    # fits cannot overflow.
    upper_bound = sum(len(_text_of(m).encode()) + _TEMPLATE_TOKENS_PER_MESSAGE for m in messages)
    if upper_bound <= budget:
        return list(messages)
    counts = await asyncio.gather(*(engine.count_tokens(spec, _text_of(m)) for m in messages))
    sized = [(m, c + _TEMPLATE_TOKENS_PER_MESSAGE) for m, c in zip(messages, counts, strict=True)]
    total = sum(size for _message, size in sized)
    keep = list(sized)
    index = 0
    while total > budget:
        # The oldest message that is neither a system message nor the last one.
        while index < len(keep) - 1 and keep[index][0].get("role") == "system":
            index += 1
        if index >= len(keep) - 1:
            raise EngineError(
                _("The message is too long for this model: about %(tokens)d tokens, the limit is %(limit)d.")
                % {"tokens": total, "limit": budget},
                permanent=True,
                status=400,
            )
        total -= keep.pop(index)[1]
    return [message for message, _size in keep]


async def chat_stream(
    *, spec: ModelSpec, messages: Sequence[ChatMessage], options: GenerationOptions
) -> AsyncIterator[StreamEvent]:
    """The one way a chat reaches an engine, from the browser or the API: the history fitted
    to the context, then streamed. Closing the returned iterator cancels the engine request."""
    engine = engine_for(spec)
    fitted = await fit_context(engine=engine, spec=spec, messages=messages, max_tokens=options.max_tokens)
    return engine.stream_chat(spec, fitted, options)
