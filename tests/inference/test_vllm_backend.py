"""The `vllm` backend speaks plain OpenAI protocol, so it is driven here against a real
OpenAI-compatible server: a llama.cpp listener (xllamacpp) on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from inference.engines import EngineError, vllm_engine
from inference.engines.base import Delta, Endpoint, Final, GenerationOptions, ModelSpec
from inference.engines.embedded import wait_until_serving
from models_admin.services.registry import bundled_model_path


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(bundled_model_path())
    params.port = 0
    params.n_parallel = 2
    params.n_ctx = 4096
    params.endpoint_slots = True
    params.verbosity = 0
    server = xllamacpp.Server(params)
    wait_until_serving(server)
    yield server.listening_address
    del server


def spec_for(url: str) -> ModelSpec:
    return ModelSpec(key="remote:latest", backend="vllm", upstream="remote", context_length=2048, endpoints=(Endpoint(url),))


def busy_slots(url: str) -> int:
    return sum(1 for slot in httpx.get(url + "/slots").json() if slot["is_processing"])


@pytest.mark.asyncio
async def test_streams_deltas_then_usage(upstream: str) -> None:
    events = [
        event
        async for event in vllm_engine().stream_chat(
            spec_for(upstream),
            [{"role": "user", "content": "Count from 1 to 100, separated by commas."}],
            GenerationOptions(max_tokens=16, temperature=0),  # greedy: cannot stop before the cap
        )
    ]
    deltas = [e for e in events if isinstance(e, Delta)]
    final = events[-1]
    assert isinstance(final, Final) and len(deltas) >= 2
    assert final.completion_tokens == 16 and final.finish_reason == "length"
    assert final.prompt_tokens > 0


@pytest.mark.asyncio
async def test_closing_the_stream_cancels_the_upstream_request(upstream: str) -> None:
    stream: Any = vllm_engine().stream_chat(
        spec_for(upstream), [{"role": "user", "content": "Write a long essay."}], GenerationOptions(max_tokens=3000)
    )
    async for event in stream:
        if isinstance(event, Delta):
            break
    assert busy_slots(upstream) == 1
    await stream.aclose()
    import asyncio

    for _ in range(40):
        if busy_slots(upstream) == 0:
            break
        await asyncio.sleep(0.025)
    assert busy_slots(upstream) == 0


@pytest.mark.asyncio
async def test_unreachable_server_is_a_retryable_engine_error() -> None:
    stream = vllm_engine().stream_chat(
        spec_for("http://127.0.0.1:9"), [{"role": "user", "content": "hi"}], GenerationOptions(max_tokens=4)
    )
    with pytest.raises(EngineError) as error:
        async for _event in stream:
            pass
    assert not error.value.permanent
    assert "not responding" in error.value.message


@pytest.mark.asyncio
async def test_health_reflects_the_server(upstream: str) -> None:
    assert await vllm_engine().health(spec_for(upstream))
    assert not await vllm_engine().health(spec_for("http://127.0.0.1:9"))
