"""vLLM replicas: two OpenAI-compatible servers (llama.cpp listeners of the embedded engine,
serving the bundled model under one name) registered as endpoints. Requests spread by load,
a stopped server is skipped without losing a request, the health check takes it out, and it
comes back when it is healthy again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import httpx
import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import AbstractUser

from inference.engines.base import Delta, GenerationOptions, ModelSpec
from inference.engines.embedded import wait_until_serving
from inference.engines.openai_compat import OpenAICompatEngine
from models_admin.models import Backend, LLMModel, VllmEndpoint
from models_admin.selectors import model_spec
from models_admin.services.endpoints import vllm_endpoint_add
from models_admin.tasks import vllm_endpoints_check
from tests.conftest import free_port

from .helpers import SMOLLM

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

SERVED = "smollm-vllm"


class Replica:
    """One OpenAI-compatible server on a fixed port, which can be stopped and started again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(SMOLLM)
        params.model_alias = {SERVED}
        params.port = self.port
        params.n_parallel = 4
        params.n_ctx = 4 * 1024
        params.endpoint_slots = True
        params.endpoint_metrics = True
        params.cpuparams.n_threads = 1
        params.cpuparams_batch.n_threads = 1
        self.server = xllamacpp.Server(params)
        wait_until_serving(self.server)

    def stop(self) -> None:
        self.server = None

    def used_slots(self) -> int:
        """Slots that have taken a request. Not "processing now": a held request's answer may
        already be generated in full on a slow machine (seen in CI), and the server lists the
        slot as idle though the client has not read it yet. A request takes an idle slot that
        holds its prompt, else the least recently used one: while the held answers run, each
        request on a fresh server takes a slot of its own."""
        slots = httpx.get(self.url + "/slots", timeout=5).json()
        return sum(1 for slot in slots if slot["is_processing"] or "id_task" in slot)


@pytest.fixture
def replicas() -> Iterator[tuple[Replica, Replica]]:
    pair = (Replica(), Replica())
    for replica in pair:
        replica.start()
    yield pair
    for replica in pair:
        replica.stop()


@pytest.fixture
def engine() -> OpenAICompatEngine:
    engine = OpenAICompatEngine()
    engine.retry_after = 0.5  # probe a failed server again quickly
    return engine


async def held(engine: OpenAICompatEngine, spec: ModelSpec) -> AsyncGenerator[Any, None]:
    """A request whose first token has arrived, held open by its caller."""
    # Greedy: this prompt then always runs to its cap (sampled, it once ended after 11 tokens
    # in CI, and the next request took its idle slot, which held the same prompt).
    options = GenerationOptions(max_tokens=300, temperature=0)
    stream = engine.stream_chat(spec, [{"role": "user", "content": "Tell me a long story."}], options)
    assert isinstance(stream, AsyncGenerator)
    first = await stream.__anext__()
    assert isinstance(first, Delta)
    return stream


async def answer(engine: OpenAICompatEngine, spec: ModelSpec) -> str:
    text = ""
    async for event in engine.stream_chat(spec, [{"role": "user", "content": "Hi"}], GenerationOptions(max_tokens=4)):
        if isinstance(event, Delta):
            text += event.text
    return text


async def current_spec() -> ModelSpec:
    model = await LLMModel.objects.aget(backend=Backend.VLLM, upstream_name=SERVED)
    return await database_sync_to_async(model_spec)(model)


async def test_requests_spread_skip_a_stopped_replica_and_return_to_it(
    admin_user: AbstractUser, replicas: tuple[Replica, Replica], engine: OpenAICompatEngine, settings: Any
) -> None:
    settings.VLLM_URL = ""
    one, two = replicas
    for replica in replicas:
        endpoint = await database_sync_to_async(vllm_endpoint_add)(actor=admin_user, url=replica.url + "/v1")
        assert endpoint.healthy and endpoint.served_models == [SERVED] and endpoint.url == replica.url
    # Adding an endpoint registers what it serves.
    spec = await current_spec()
    assert sorted(e.url for e in spec.endpoints) == sorted([one.url, two.url])

    # Spread by load: four requests held open land two on each server.
    streams = [await held(engine, spec) for _ in range(4)]
    assert (engine.in_flight(one.url), engine.in_flight(two.url)) == (2, 2)
    assert (await asyncio.to_thread(one.used_slots), await asyncio.to_thread(two.used_slots)) == (2, 2)
    for stream in streams[:3]:
        await stream.aclose()
    # The next request goes to the server with fewer requests in flight.
    busy = one.url if engine.in_flight(one.url) else two.url
    idle = two if busy == one.url else one
    extra = await held(engine, spec)
    assert engine.in_flight(idle.url) == 1 and engine.in_flight(busy) == 1
    await extra.aclose()
    await streams[3].aclose()
    assert engine.in_flight(one.url) == engine.in_flight(two.url) == 0

    # A stopped server: every request still gets an answer, from the other one.
    two.stop()
    answers = [await answer(engine, spec) for _ in range(4)]
    assert all(answers)
    assert engine.is_down(two.url) and not engine.is_down(one.url)

    # The periodic health check (the beat task) takes it out of the registry's list too.
    await database_sync_to_async(vllm_endpoints_check.apply)()
    stopped = await VllmEndpoint.objects.aget(url=two.url)
    assert not stopped.healthy and stopped.last_error
    assert [e.url for e in (await current_spec()).endpoints] == [one.url]

    # Back: healthy at the next check, and the engine routes to it again.
    two.start()
    await database_sync_to_async(vllm_endpoints_check.apply)()
    assert (await VllmEndpoint.objects.aget(url=two.url)).healthy
    spec = await current_spec()
    assert len(spec.endpoints) == 2
    await asyncio.sleep(engine.retry_after)
    streams = [await held(engine, spec) for _ in range(2)]
    assert (engine.in_flight(one.url), engine.in_flight(two.url)) == (1, 1)
    assert not engine.is_down(two.url)
    for stream in streams:
        await stream.aclose()


async def test_vllm_url_keeps_working_as_the_default_endpoint(admin_user: AbstractUser, settings: Any) -> None:
    settings.VLLM_URL = "http://vllm.internal:8000"
    settings.VLLM_API_KEY = "secret"
    model = await LLMModel.objects.acreate(name="served", backend=Backend.VLLM, upstream_name="org/served", format="safetensors")
    spec = await database_sync_to_async(model_spec)(model)
    assert [(e.url, e.api_key) for e in spec.endpoints] == [("http://vllm.internal:8000", "secret")]
    # A registered, healthy endpoint serving the model comes first; the default stays as a fallback.
    await VllmEndpoint.objects.acreate(url="http://replica:8000", healthy=True, served_models=["org/served"])
    await VllmEndpoint.objects.acreate(url="http://other:8000", healthy=True, served_models=["org/another"])
    spec = await database_sync_to_async(model_spec)(model)
    assert [e.url for e in spec.endpoints] == ["http://replica:8000", "http://vllm.internal:8000"]
