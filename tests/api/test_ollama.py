"""The native Ollama routes, driven by the official ``ollama`` client and raw HTTP."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime

import httpx
import ollama
import pytest
from django.contrib.auth.models import AbstractUser

from accounts.models import UsageRecord, UsageSource
from models_admin.models import LLMModel

from .helpers import ndjson_lines

pytestmark = pytest.mark.django_db(transaction=True)

SHORT = {"num_predict": 8, "temperature": 0}
HELLO = [{"role": "user", "content": "Say hello to the team."}]
DURATIONS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")


def test_version_is_reported(server: str, alice_key: str) -> None:
    response = httpx.get(f"{server}/api/version", headers={"Authorization": f"Bearer {alice_key}"})
    assert response.status_code == 200
    assert response.json()["version"].count(".") == 2


def test_tags_list_only_the_models_the_user_may_use(
    ollama_client: Callable[..., ollama.Client], alice_key: str, bob_key: str, restricted_model: LLMModel
) -> None:
    alices = ollama_client(alice_key).list().models
    assert sorted(m.model for m in alices) == ["alices-model:latest", "smollm2:135m"]
    bobs = ollama_client(bob_key).list().models
    assert [m.model for m in bobs] == ["smollm2:135m"]
    entry = bobs[0]
    assert entry.size and entry.size > 0
    assert entry.digest and len(entry.digest) == 64
    assert isinstance(entry.modified_at, datetime)
    assert entry.details and entry.details.family == "llama" and entry.details.quantization_level == "Q4_1"


def test_show_reports_model_info_and_capabilities(ollama_client: Callable[..., ollama.Client], alice_key: str, smollm: LLMModel) -> None:
    shown = ollama_client(alice_key).show("smollm2:135m")
    assert shown.capabilities == ["completion"]
    assert shown.modelinfo is not None
    assert shown.modelinfo["general.architecture"] == "llama"
    assert shown.modelinfo["llama.context_length"] == 8192
    assert shown.modelinfo["general.parameter_count"] > 100_000_000
    assert shown.details and shown.details.parameter_size == "135M"
    assert shown.template and "im_start" in shown.template
    assert shown.modelfile and "FROM smollm2:135m" in shown.modelfile


def test_show_accepts_the_deprecated_name_field(server: str, alice_key: str, smollm: LLMModel) -> None:
    response = httpx.post(f"{server}/api/show", json={"name": "smollm2:135m"}, headers={"Authorization": f"Bearer {alice_key}"})
    assert response.status_code == 200 and "model_info" in response.json()


def test_name_and_name_latest_are_the_same_model(
    ollama_client: Callable[..., ollama.Client], alice_key: str, restricted_model: LLMModel
) -> None:
    client = ollama_client(alice_key)
    assert client.show("alices-model").capabilities == client.show("alices-model:latest").capabilities
    answer = client.chat(model="alices-model", messages=HELLO, options=SHORT)
    assert answer.message.content


def test_restricted_model_is_invisible_and_unusable_for_others(
    ollama_client: Callable[..., ollama.Client], bob_key: str, restricted_model: LLMModel
) -> None:
    client = ollama_client(bob_key)
    for call in (
        lambda: client.show("alices-model"),
        lambda: client.chat(model="alices-model", messages=HELLO, options=SHORT),
        lambda: client.generate(model="alices-model:latest", prompt="Hi", options=SHORT),
    ):
        with pytest.raises(ollama.ResponseError) as refused:
            call()
        # Exactly what a missing model gets, so the name does not leak.
        assert refused.value.status_code == 404
        assert "not found" in refused.value.error
    with pytest.raises(ollama.ResponseError) as missing:
        client.show("no-such-model")
    assert missing.value.status_code == 404


def test_chat_without_streaming_returns_one_answer_with_metrics(
    ollama_client: Callable[..., ollama.Client], alice: AbstractUser, alice_key: str, smollm: LLMModel
) -> None:
    answer = ollama_client(alice_key).chat(model="smollm2:135m", messages=HELLO, options=SHORT)
    assert answer.done and answer.done_reason in ("stop", "length")
    assert answer.message.role == "assistant" and answer.message.content
    assert answer.prompt_eval_count and answer.prompt_eval_count > 0
    assert answer.eval_count and 0 < answer.eval_count <= 8
    assert answer.total_duration and answer.total_duration > answer.eval_duration > 0  # nanoseconds
    usage = UsageRecord.objects.get(user=alice)
    assert (usage.model_name, usage.source) == ("smollm2:135m", UsageSource.OLLAMA)
    assert usage.prompt_tokens == answer.prompt_eval_count and usage.completion_tokens == answer.eval_count


def test_chat_streams_ndjson_with_message_on_every_line(
    ollama_client: Callable[..., ollama.Client], alice: AbstractUser, alice_key: str, smollm: LLMModel
) -> None:
    parts = list(ollama_client(alice_key).chat(model="smollm2:135m", messages=HELLO, options=SHORT, stream=True))
    assert len(parts) >= 3
    assert all(p.message is not None and p.message.role == "assistant" for p in parts)
    assert not any(p.done for p in parts[:-1]) and parts[-1].done
    assert parts[-1].done_reason in ("stop", "length") and parts[-1].eval_count
    assert "".join(p.message.content or "" for p in parts)
    assert UsageRecord.objects.filter(user=alice).count() == 1, "one usage row per request, not per token"


def test_non_final_chat_lines_carry_non_empty_content(server: str, alice_key: str, smollm: LLMModel) -> None:
    """Legacy Chatbox throws on a non-final line whose message.content is empty."""
    body = {"model": "smollm2:135m", "messages": HELLO, "options": SHORT}  # stream defaults to on
    with httpx.stream("POST", f"{server}/api/chat", json=body, headers={"Authorization": f"Bearer {alice_key}"}) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/x-ndjson"
        assert response.headers["X-Accel-Buffering"] == "no"
        assert "Content-Encoding" not in response.headers
        lines = list(ndjson_lines(response))
    assert lines[-1]["done"] is True and "message" in lines[-1]
    assert all(isinstance(line["created_at"], str) for line in lines)
    for line in lines[:-1]:
        assert line["done"] is False
        assert line["message"]["content"] != ""
    for name in DURATIONS:
        assert isinstance(lines[-1][name], int)


def test_generate_streams_response_fields(ollama_client: Callable[..., ollama.Client], alice_key: str, smollm: LLMModel) -> None:
    client = ollama_client(alice_key)
    parts = list(client.generate(model="smollm2:135m", prompt="Why is the sky blue?", options=SHORT, stream=True))
    assert parts[-1].done and parts[-1].done_reason
    assert all(p.response for p in parts[:-1])
    whole = client.generate(model="smollm2:135m", prompt="Why is the sky blue?", options=SHORT)
    assert whole.done and whole.response and whole.eval_count


def test_raw_generate_continues_the_prompt_without_the_chat_template(
    ollama_client: Callable[..., ollama.Client], alice_key: str, smollm: LLMModel
) -> None:
    answer = ollama_client(alice_key).generate(
        model="smollm2:135m", prompt="1, 2, 3, 4,", raw=True, options={"num_predict": 4, "temperature": 0}
    )
    assert answer.response.strip().startswith("5")
    # The chat template would have wrapped the prompt in some 20 tokens of markup.
    assert answer.prompt_eval_count is not None and answer.prompt_eval_count < 12


def test_an_empty_chat_loads_the_model(ollama_client: Callable[..., ollama.Client], alice_key: str, smollm: LLMModel) -> None:
    loaded = ollama_client(alice_key).chat(model="smollm2:135m", messages=[])
    assert loaded.done and loaded.done_reason == "load"
    assert loaded.message.content == ""


def test_admins_max_tokens_ceiling_caps_num_predict(
    ollama_client: Callable[..., ollama.Client], alice_key: str, smollm: LLMModel
) -> None:
    smollm.max_tokens = 3
    smollm.save(update_fields=["max_tokens"])
    answer = ollama_client(alice_key).chat(
        model="smollm2:135m", messages=HELLO, options={"num_predict": 50, "temperature": 0}
    )
    assert answer.eval_count == 3 and answer.done_reason == "length"


def test_model_system_prompt_is_applied(ollama_client: Callable[..., ollama.Client], alice_key: str, smollm: LLMModel) -> None:
    client = ollama_client(alice_key)
    plain = client.chat(model="smollm2:135m", messages=HELLO, options={"num_predict": 1})
    smollm.system_prompt = "You are a pirate. Always answer like a pirate, with many nautical words. " * 3
    smollm.save(update_fields=["system_prompt"])
    prompted = client.chat(model="smollm2:135m", messages=HELLO, options={"num_predict": 1})
    assert prompted.prompt_eval_count and plain.prompt_eval_count
    assert prompted.prompt_eval_count > plain.prompt_eval_count + 20


def test_ps_lists_loaded_models_the_user_may_use(
    ollama_client: Callable[..., ollama.Client], alice_key: str, bob_key: str, restricted_model: LLMModel
) -> None:
    ollama_client(alice_key).chat(model="smollm2:135m", messages=[])  # make sure it is loaded
    running = ollama_client(alice_key).ps().models
    assert "smollm2:135m" in [m.model for m in running]
    entry = next(m for m in running if m.model == "smollm2:135m")
    assert entry.expires_at is not None and entry.size_vram == 0 and entry.size
    assert all(m.model != "alices-model:latest" for m in ollama_client(bob_key).ps().models)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"model": "smollm2:135m", "messages": [', "invalid JSON"),
        (b'{"model": "smollm2:135m", "stream": "yes"}', "stream"),
        (b'{"model": "smollm2:135m", "messages": [{"role": "user", "content": 5}]}', "messages.0.content"),
        (b'{"model": "smollm2:135m", "options": {"num_predict": "many"}}', "options.num_predict"),
        (b'["smollm2:135m"]', "invalid request"),
        (b"", "missing request body"),
    ],
)
def test_malformed_requests_get_400_with_a_reason(server: str, alice_key: str, smollm: LLMModel, body: bytes, fragment: str) -> None:
    response = httpx.post(f"{server}/api/chat", content=body, headers={"Authorization": f"Bearer {alice_key}"})
    assert response.status_code == 400
    assert fragment in response.json()["error"]


def test_bad_key_outranks_a_bad_body(server: str) -> None:
    response = httpx.post(f"{server}/api/chat", content=b"{", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401


def test_unknown_model_is_404_before_any_byte_is_streamed(server: str, alice_key: str, smollm: LLMModel) -> None:
    body = {"model": "nope:latest", "messages": HELLO}
    with httpx.stream("POST", f"{server}/api/chat", json=body, headers={"Authorization": f"Bearer {alice_key}"}) as response:
        assert response.status_code == 404
        assert json.loads(response.read()) == {"error": "model 'nope:latest' not found"}


def test_key_prefix_works_for_the_ollama_client(
    server: str, ollama_client: Callable[..., ollama.Client], alice_key: str, smollm: LLMModel
) -> None:
    client = ollama_client(None, host=f"{server}/u/{alice_key}")
    assert [m.model for m in client.list().models] == ["smollm2:135m"]
    answer = client.chat(model="smollm2:135m", messages=HELLO, options=SHORT)
    assert answer.message.content


def test_images_sent_to_a_model_without_vision_are_dropped_not_fatal(
    ollama_client: Callable[..., ollama.Client], alice_key: str, smollm: LLMModel
) -> None:
    pixel = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    )
    answer = ollama_client(alice_key).chat(
        model="smollm2:135m", messages=[{"role": "user", "content": "Describe this.", "images": [pixel]}], options=SHORT
    )
    assert answer.message.content


def test_keep_alive_sets_how_long_the_model_stays_loaded(server: str, alice_key: str, smollm: LLMModel) -> None:
    headers = {"Authorization": f"Bearer {alice_key}"}
    body = {"model": "smollm2:135m", "messages": HELLO, "stream": False, "options": SHORT, "keep_alive": "45m"}
    assert httpx.post(f"{server}/api/chat", json=body, headers=headers, timeout=60).status_code == 200
    loaded = httpx.get(f"{server}/api/ps", headers=headers).json()["models"]
    expires = datetime.fromisoformat(next(m for m in loaded if m["name"] == "smollm2:135m")["expires_at"])
    minutes_left = (expires - datetime.now(expires.tzinfo)).total_seconds() / 60
    assert 40 < minutes_left <= 45

    bad = httpx.post(f"{server}/api/chat", json={**body, "keep_alive": "forever"}, headers=headers)
    assert bad.status_code == 400 and "keep_alive" in bad.json()["error"]
