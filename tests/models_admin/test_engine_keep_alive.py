"""The embedded engine loads on demand and unloads like Ollama: after ``keep_alive`` idle
(default or per request), the least recently used idle model when too many are loaded or
memory would overflow, and never a model with requests in flight."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import types
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import pytest

from inference.engines import embedded
from inference.engines.base import EngineError, GenerationOptions, ModelSpec
from inference.engines.embedded import EmbeddedEngine, parse_keep_alive

from .helpers import ROOT, SMOLLM

TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def spec(name: str) -> ModelSpec:
    # Same file, different templates: separate llama.cpp instances, as custom models get.
    return ModelSpec(
        key=f"{name}:latest", backend="embedded", upstream=name, context_length=512, path=str(SMOLLM),
        chat_template=TEMPLATE + "{# " + name + " #}",
    )


@pytest.fixture
def engine(settings: Any) -> Iterator[EmbeddedEngine]:
    settings.EMBEDDED_PARALLEL = 2
    settings.EMBEDDED_CONTEXT = 512
    settings.EMBEDDED_KEEP_ALIVE = 300.0
    settings.EMBEDDED_MAX_LOADED = 3
    settings.ENGINE_MEMORY_BYTES = 64 << 30
    # One thread: llama.cpp's threads spin-wait on each other, which stalls on a busy machine.
    settings.EMBEDDED_THREADS = 1
    engine = EmbeddedEngine()
    yield engine
    for loaded in engine.loaded():
        engine.unload(loaded.spec)


async def answer(engine: EmbeddedEngine, model: ModelSpec, max_tokens: int = 4) -> str:
    parts = []
    async for event in engine.stream_chat(model, [{"role": "user", "content": "Tell me a story."}], GenerationOptions(max_tokens=max_tokens)):
        parts.append(getattr(event, "text", ""))
    return "".join(parts)


def held_request(engine: EmbeddedEngine, model: ModelSpec) -> AsyncGenerator[Any, None]:
    """A long answer whose caller reads the first delta and then holds the request open."""
    stream = engine.stream_chat(model, [{"role": "user", "content": "Tell me a long story."}], GenerationOptions(max_tokens=400))
    assert isinstance(stream, AsyncGenerator)
    return stream


def keys(engine: EmbeddedEngine) -> set[str]:
    return {m.spec.key for m in engine.loaded()}


async def wait_until(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.1)
    return condition()


async def test_idle_model_unloads_after_keep_alive(engine: EmbeddedEngine, settings: Any) -> None:
    settings.EMBEDDED_KEEP_ALIVE = 1.0
    a = spec("a")
    await answer(engine, a)
    loaded = engine.loaded_model(a)
    assert loaded is not None and loaded.in_flight == 0
    assert loaded.expires_at is not None and 0 < (loaded.expires_at.timestamp() - time.time()) <= 1.0
    assert await wait_until(lambda: not engine.loaded(), timeout=4), "the reaper should unload it"


async def test_a_model_with_requests_in_flight_is_never_unloaded(engine: EmbeddedEngine, settings: Any) -> None:
    settings.EMBEDDED_KEEP_ALIVE = 0.3
    a = spec("a")
    request = held_request(engine, a)
    await request.__anext__()  # the engine has started answering: one request in flight
    assert engine.loaded_model(a).in_flight == 1
    engine.touch(a, keep_alive=0)  # Ollama's keep_alive 0: unload once idle, not under the request
    await asyncio.sleep(1.5)
    assert keys(engine) == {"a:latest"}
    assert engine.reap() == []
    await request.aclose()  # the request ends (here: the client goes away)
    assert await wait_until(lambda: not engine.loaded(), timeout=3)


async def test_keep_alive_per_model_forever_and_back_to_default(engine: EmbeddedEngine, settings: Any) -> None:
    settings.EMBEDDED_KEEP_ALIVE = 0.5
    a = spec("a")
    engine.touch(a, keep_alive=-1)  # asked before loading: applies when it loads
    await engine.load_async(a)
    assert engine.loaded_model(a).expires_at is None
    await asyncio.sleep(1.2)
    assert keys(engine) == {"a:latest"}
    engine.touch(a, keep_alive=None)  # back to EMBEDDED_KEEP_ALIVE
    assert engine.loaded_model(a).expires_at is not None
    assert await wait_until(lambda: not engine.loaded(), timeout=3)


async def test_loading_past_the_maximum_unloads_the_least_recently_used(engine: EmbeddedEngine, settings: Any) -> None:
    settings.EMBEDDED_MAX_LOADED = 2
    a, b, c = spec("a"), spec("b"), spec("c")
    await answer(engine, a)
    await answer(engine, b)
    await answer(engine, a)  # a is now more recent than b
    await answer(engine, c)
    assert keys(engine) == {"a:latest", "c:latest"}


async def test_loading_past_the_memory_limit_unloads_idle_models(engine: EmbeddedEngine, settings: Any) -> None:
    a, b = spec("a"), spec("b")
    await answer(engine, a)
    one = engine.loaded_model(a).size_bytes
    assert one > 98_000_000, "weights, KV cache and buffers"
    settings.ENGINE_MEMORY_BYTES = int(one * 1.5)
    await answer(engine, b)
    assert keys(engine) == {"b:latest"}


async def test_when_every_loaded_model_is_busy_a_new_one_waits_its_turn(engine: EmbeddedEngine, settings: Any) -> None:
    settings.EMBEDDED_MAX_LOADED = 1
    a, b = spec("a"), spec("b")
    request = held_request(engine, a)
    await request.__anext__()
    with pytest.raises(EngineError) as busy:
        await answer(engine, b)
    assert busy.value.status == 503 and not busy.value.permanent
    assert keys(engine) == {"a:latest"}
    await request.aclose()
    await answer(engine, b)  # a is idle now, so it makes room
    assert keys(engine) == {"b:latest"}


# In a process of its own: the freeze it guards against holds the GIL, so it would stop the
# test run itself (it did, in CI).
LOAD_AND_UNLOAD = """
import sys
import django
django.setup()
from inference.engines.base import ModelSpec
from inference.engines.embedded import EmbeddedEngine
engine = EmbeddedEngine()
model = ModelSpec(key="a:latest", backend="embedded", upstream="a", context_length=512, path=sys.argv[1])
for cycle in range(int(sys.argv[2])):
    engine.load(model)
    assert engine.unload(model)
    print(cycle + 1, flush=True)
"""


def test_a_model_unloaded_the_moment_it_loaded_stops_and_the_process_goes_on() -> None:
    """An Ollama client's load with ``keep_alive: 0``, or an admin's unload, right after a load:
    llama.cpp's server, stopped before its loop had started, never stopped, and its destructor
    froze the whole process. It takes a busy machine (in CI a streaming answer kept the cores
    busy), so every core spins meanwhile. Measured here, 40 cycles without the engine's wait for
    the loop: 3 of 3 runs froze (after 1, 7 and 10 cycles); with it, 3 of 3 finished."""
    cycles = 15
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "platform.settings", "EMBEDDED_PARALLEL": "2",
                   "EMBEDDED_THREADS": "1"}
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    try:
        done = subprocess.run(
            [sys.executable, "-c", LOAD_AND_UNLOAD, str(SMOLLM), str(cycles)],
            cwd=ROOT, env=environment, capture_output=True, text=True, timeout=150,
        )
    except subprocess.TimeoutExpired as frozen:
        pytest.fail(f"the process froze loading and unloading a model {cycles} times (stderr: {frozen.stderr!r})")
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [str(n) for n in range(1, cycles + 1)]


def test_a_server_whose_loop_never_answers_is_kept_not_destroyed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Destroying it would wait for its loop forever, so the load fails with a 503 and the
    server is kept. A stand-in whose address has no listener: the real one cannot be made to
    hang on demand."""
    monkeypatch.setattr(embedded, "SERVING_WAIT_SECONDS", 0.3)
    monkeypatch.setattr(embedded, "_UNSTOPPABLE", [])
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        address = "http://127.0.0.1:%d" % probe.getsockname()[1]
    stuck = types.SimpleNamespace(listening_address=address)
    with pytest.raises(EngineError) as failed:
        embedded.wait_until_serving(stuck)
    assert failed.value.status == 503 and str(failed.value) == "The model was loaded but its engine did not start. Please try again."
    assert embedded._UNSTOPPABLE == [stuck]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(None, None), ("", None), (300, 300.0), (0, 0.0), (-1, -1.0), ("5m", 300.0), ("1h30m", 5400.0),
     ("90s", 90.0), ("-1m", -60.0), ("250ms", 0.25), ("42", 42.0), ("1.5h", 5400.0)],
)
def test_keep_alive_values_as_ollama_writes_them(value: object, seconds: float | None) -> None:
    assert parse_keep_alive(value) == seconds


@pytest.mark.parametrize("value", ["soon", "5 minutes", "5x", True, [5], "m5"])
def test_keep_alive_nonsense_is_refused(value: object) -> None:
    with pytest.raises(ValueError):
        parse_keep_alive(value)
