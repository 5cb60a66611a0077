"""Context limits and answer-length ceilings, counted by the real engine's tokenizer."""

from __future__ import annotations

from typing import Any

import pytest

from inference.engines import EngineError, embedded_engine
from inference.engines.base import ChatMessage, ModelSpec
from inference.prompting import MAX_TOKENIZE_CALLS, fit_context, generation_options, with_system_prompt
from models_admin.services.registry import bundled_model_path


@pytest.fixture
def spec() -> ModelSpec:
    return ModelSpec(
        key="smollm2:ctx-test", backend="embedded", upstream="smollm2", context_length=512, path=str(bundled_model_path())
    )


def test_max_tokens_is_capped_by_the_admin_ceiling(spec: ModelSpec, settings: Any) -> None:
    settings.MAX_TOKENS_CEILING = 300
    settings.DEFAULT_MAX_TOKENS = 100
    assert generation_options(spec=spec, requested={}).max_tokens == 100
    assert generation_options(spec=spec, requested={"max_tokens": 10_000}).max_tokens == 300
    assert generation_options(spec=spec, requested={"max_tokens": 10_000}, model_max_tokens=50).max_tokens == 50
    assert generation_options(spec=spec, requested={"max_tokens": 20}).max_tokens == 20


def test_model_system_prompt_is_added_unless_the_chat_has_one() -> None:
    messages: list[ChatMessage] = [{"role": "user", "content": "hi"}]
    assert with_system_prompt(messages, "Be brief.")[0] == {"role": "system", "content": "Be brief."}
    own: list[ChatMessage] = [{"role": "system", "content": "Mine"}, {"role": "user", "content": "hi"}]
    assert with_system_prompt(own, "Be brief.") == own


@pytest.mark.asyncio
async def test_oldest_turns_are_dropped_and_the_system_prompt_kept(spec: ModelSpec) -> None:
    engine = embedded_engine()
    long_turn = "word " * 150  # ~150 tokens each
    messages: list[ChatMessage] = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "first " + long_turn},
        {"role": "assistant", "content": "second " + long_turn},
        {"role": "user", "content": "third " + long_turn},
        {"role": "assistant", "content": "fourth"},
        {"role": "user", "content": "the latest question"},
    ]
    fitted = (await fit_context(engine=engine, spec=spec, messages=messages, max_tokens=128)).messages
    assert fitted[0]["role"] == "system"
    assert fitted[-1]["content"] == "the latest question"
    assert len(fitted) < len(messages)
    assert not any(str(m["content"]).startswith("first") for m in fitted)
    counted = sum([await engine.count_tokens(spec, str(m["content"])) + 8 for m in fitted])
    assert counted <= spec.context_length - 128


@pytest.mark.asyncio
async def test_short_history_is_sent_whole_without_asking_the_engine(spec: ModelSpec) -> None:
    messages: list[ChatMessage] = [{"role": "user", "content": "hello"}]
    fitted = await fit_context(engine=CountingEngine(embedded_engine()), spec=spec, messages=messages, max_tokens=64)
    assert fitted.messages == messages and fitted.tokens is None


@pytest.mark.asyncio
async def test_a_single_message_too_long_for_the_model_is_refused_clearly(spec: ModelSpec) -> None:
    messages: list[ChatMessage] = [{"role": "user", "content": "word " * 2000}]
    with pytest.raises(EngineError) as error:
        await fit_context(engine=embedded_engine(), spec=spec, messages=messages, max_tokens=64)
    assert error.value.permanent and "too long" in error.value.message


class CountingEngine:
    """The real engine, with its tokenizer calls counted (and their concurrency measured)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.calls = 0
        self.in_flight = 0
        self.most_in_flight = 0

    async def count_tokens(self, spec: ModelSpec, text: str) -> int:
        self.calls += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return int(await self.engine.count_tokens(spec, text))
        finally:
            self.in_flight -= 1


@pytest.mark.asyncio
async def test_thousands_of_messages_cost_a_bounded_number_of_tokenizer_calls(spec: ModelSpec) -> None:
    """The request that once froze the web process: a few thousand short messages."""
    engine = CountingEngine(embedded_engine())
    messages: list[ChatMessage] = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"message number {i} says hello"} for i in range(3000)
    ]
    fitted = await fit_context(engine=engine, spec=spec, messages=messages, max_tokens=64)  # type: ignore[arg-type]
    assert engine.calls <= MAX_TOKENIZE_CALLS
    assert engine.most_in_flight == 1
    assert fitted.messages[-1] == messages[-1]
    assert 1 < len(fitted.messages) < len(messages)
    # What is kept really fits, counted message by message by the real tokenizer.
    counted = sum([await embedded_engine().count_tokens(spec, str(m["content"])) + 8 for m in fitted.messages])
    assert counted <= spec.context_length - 64
    assert fitted.tokens is not None and fitted.tokens <= spec.context_length - 64
