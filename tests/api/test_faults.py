"""What happens when a stream breaks: the engine fails mid-answer, or the client goes away."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import ollama
import openai
import pytest
from django.contrib.auth.models import AbstractUser

from accounts.models import UsageRecord
from models_admin.models import LLMModel
from tests.conftest import LiveServer

from .conftest import CHAT_PIECES
from .helpers import decoded_tokens, RawHTTP, busy_slots, engine_urls, ndjson_lines, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

LONG = [{"role": "user", "content": "Write a very long, detailed story about a lighthouse keeper, with many chapters."}]


# ---- Engine failure mid-stream -----------------------------------------------------------------
# The embedded engine cannot be made to fail half-way through an answer from outside its
# process, so these tests use the one scripted stand-in allowed for fault injection: a
# vLLM-backend model whose OpenAI-compatible upstream (tests/api/conftest.py) streams a few
# chunks and then fails, by an error event (as vLLM reports a dead engine) or by dropping the
# connection (as a crashed server does).


def test_native_stream_ends_with_an_error_line_when_the_engine_dies(
    configured_server: str, alice_key: str, flaky_model: LLMModel
) -> None:
    body = {"model": "flaky", "messages": [{"role": "user", "content": "Hi"}]}
    with httpx.stream(
        "POST", f"{configured_server}/api/chat", json=body, headers={"Authorization": f"Bearer {alice_key}"}, timeout=30
    ) as response:
        assert response.status_code == 200  # the failure came after the first byte
        lines = list(ndjson_lines(response))
    assert [line["message"]["content"] for line in lines[:-1]] == CHAT_PIECES
    assert set(lines[-1]) == {"error"} and lines[-1]["error"]
    assert not any(line.get("done") for line in lines)


def test_ollama_client_raises_on_a_mid_stream_error(
    configured_server: str, alice_key: str, flaky_model: LLMModel
) -> None:
    client = ollama.Client(host=configured_server, headers={"Authorization": f"Bearer {alice_key}"})
    received = []
    with pytest.raises(ollama.ResponseError):
        for part in client.generate(model="flaky", prompt="Hi", stream=True):
            received.append(part.response)
    assert received == CHAT_PIECES


def test_openai_stream_ends_with_an_error_event_when_the_engine_dies(
    configured_server: str, alice: AbstractUser, alice_key: str, flaky_model: LLMModel
) -> None:
    client = openai.OpenAI(base_url=f"{configured_server}/v1", api_key=alice_key, max_retries=0)
    received = []
    with pytest.raises(openai.APIError) as failed:
        for chunk in client.chat.completions.create(model="flaky", messages=[{"role": "user", "content": "Hi"}], stream=True):
            received.append(chunk.choices[0].delta.content)
    assert received == CHAT_PIECES
    assert failed.value.message
    # What was generated before the failure still counts (recorded as the stream closes).
    assert wait_for(lambda: UsageRecord.objects.filter(user=alice).exists(), timeout=5)
    assert UsageRecord.objects.get(user=alice).completion_tokens == len(CHAT_PIECES)


def test_raw_sse_error_event_has_openais_error_shape(configured_server: str, alice_key: str, flaky_model: LLMModel) -> None:
    body = {"model": "flaky", "prompt": "Hi", "stream": True}
    with httpx.stream(
        "POST", f"{configured_server}/v1/completions", json=body, headers={"Authorization": f"Bearer {alice_key}"}, timeout=30
    ) as response:
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert "[DONE]" not in events
    error = json.loads(events[-1])["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]


def test_stream_ends_with_an_error_line_when_the_upstream_connection_drops(
    configured_server: str, alice_key: str, cut_model: LLMModel
) -> None:
    # Keep this the last test on the configured server's vLLM backend: a dropped connection
    # takes the upstream out of rotation for a while, so later requests to it get a 503.
    body = {"model": "flaky-cut", "messages": [{"role": "user", "content": "Hi"}]}
    with httpx.stream(
        "POST", f"{configured_server}/api/chat", json=body, headers={"Authorization": f"Bearer {alice_key}"}, timeout=30
    ) as response:
        assert response.status_code == 200
        lines = list(ndjson_lines(response))
    assert [line["message"]["content"] for line in lines[:-1]] == CHAT_PIECES
    assert set(lines[-1]) == {"error"}


# ---- Client gone mid-answer ----------------------------------------------------------------------


def _engine_of(live_platform: LiveServer) -> list[str]:
    port = httpx.URL(live_platform.url).port
    assert port is not None
    urls = engine_urls(live_platform.process.pid, exclude=port)
    assert urls, "the platform's engine should be listening"
    return urls


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/chat", {"model": "smollm2:135m", "messages": LONG, "options": {"num_predict": 3000, "temperature": 0}}),
        ("/v1/chat/completions", {"model": "smollm2:135m", "messages": LONG, "max_tokens": 3000, "stream": True, "temperature": 0}),
    ],
)
def test_client_disconnect_mid_stream_frees_the_engine_slot(
    live_platform: LiveServer, server: str, alice: AbstractUser, alice_key: str, smollm: LLMModel, path: str,
    body: dict[str, object],
) -> None:
    # Make sure the model is loaded, then find its llama.cpp listener inside the server process.
    httpx.post(f"{server}/api/chat", json={"model": "smollm2:135m", "messages": []}, headers={"Authorization": f"Bearer {alice_key}"}, timeout=60)
    engine = _engine_of(live_platform)
    assert wait_for(lambda: busy_slots(engine) == 0, timeout=30), "the engine should be idle before the test"

    request = RawHTTP(server, "POST", path, body, {"Authorization": f"Bearer {alice_key}"})
    request.read_until(b'"content"')  # the first tokens arrived: the answer is streaming
    assert busy_slots(engine) == 1
    request.hang_up()

    assert wait_for(lambda: busy_slots(engine) == 0, timeout=2), "the engine kept generating for a client that left"
    # What was generated before the client left is still attributed to it.
    assert wait_for(lambda: UsageRecord.objects.filter(user=alice).exists(), timeout=5)
    assert 0 < UsageRecord.objects.get(user=alice).completion_tokens < 3000


def test_client_disconnect_during_a_non_streamed_answer_frees_the_engine_slot(
    live_platform: LiveServer, server: str, alice: AbstractUser, alice_key: str, smollm: LLMModel
) -> None:
    httpx.post(f"{server}/api/chat", json={"model": "smollm2:135m", "messages": []}, headers={"Authorization": f"Bearer {alice_key}"}, timeout=60)
    engine = _engine_of(live_platform)
    assert wait_for(lambda: busy_slots(engine) == 0, timeout=30)

    body = {"model": "smollm2:135m", "messages": LONG, "max_tokens": 3000, "temperature": 0}  # no "stream": not streamed
    request = RawHTTP(server, "POST", "/v1/chat/completions", body, {"Authorization": f"Bearer {alice_key}"})
    assert wait_for(lambda: busy_slots(engine) == 1, timeout=30), "the engine should be generating the answer"
    # A busy slot may still be reading the prompt; wait until the engine has generated
    # tokens (a time-based wait is flaky on a loaded machine), so there is usage to attribute.
    assert wait_for(lambda: decoded_tokens(engine) >= 20, timeout=30), "the engine should be generating tokens"
    time.sleep(0.2)  # the platform reads them as they come
    request.hang_up()

    assert wait_for(lambda: busy_slots(engine) == 0, timeout=2), "the engine kept generating for a client that left"
    # The tokens generated before the client left are still attributed to it.
    assert wait_for(lambda: UsageRecord.objects.filter(user=alice).exists(), timeout=5)
    assert 0 < UsageRecord.objects.get(user=alice).completion_tokens < 3000
