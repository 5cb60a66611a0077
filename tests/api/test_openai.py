"""The OpenAI-compatible routes, driven by the official ``openai`` client and raw HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import openai
import pytest
from django.contrib.auth.models import AbstractUser

from accounts.models import UsageRecord, UsageSource
from models_admin.models import LLMModel

from .helpers import sse_events

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "Say hello to the team."}]
# A 1x1 PNG, as Chatbox sends pasted images.
PIXEL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def test_models_list_only_what_the_user_may_use(
    openai_client: Callable[..., openai.OpenAI], alice_key: str, bob_key: str, restricted_model: LLMModel
) -> None:
    alices = openai_client(alice_key).models.list()
    assert sorted(m.id for m in alices) == ["alices-model:latest", "smollm2:135m"]
    assert all(m.object == "model" and m.created > 0 and m.owned_by for m in alices)
    assert [m.id for m in openai_client(bob_key).models.list()] == ["smollm2:135m"]


def test_model_detail_hides_other_users_models(
    openai_client: Callable[..., openai.OpenAI], alice_key: str, bob_key: str, restricted_model: LLMModel
) -> None:
    assert openai_client(alice_key).models.retrieve("alices-model").id == "alices-model:latest"
    with pytest.raises(openai.NotFoundError) as refused:
        openai_client(bob_key).models.retrieve("alices-model:latest")
    assert refused.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        openai_client(bob_key).models.retrieve("missing-model")


def test_chat_completion_without_stream_key_is_not_streamed(
    server: str, alice: AbstractUser, alice_key: str, smollm: LLMModel
) -> None:
    # Chatbox sends no "stream" at all when streaming is off.
    body = {"model": "smollm2:135m", "messages": HELLO, "max_tokens": 6, "temperature": 0}
    response = httpx.post(f"{server}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {alice_key}"}, timeout=120)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    answer = response.json()
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["role"] == "assistant" and answer["choices"][0]["message"]["content"]
    assert answer["choices"][0]["finish_reason"] in ("stop", "length")
    assert answer["usage"]["completion_tokens"] <= 6
    assert answer["usage"]["total_tokens"] == answer["usage"]["prompt_tokens"] + answer["usage"]["completion_tokens"]
    usage = UsageRecord.objects.get(user=alice)
    assert usage.source == UsageSource.OPENAI and usage.completion_tokens == answer["usage"]["completion_tokens"]


def test_chat_stream_is_sse_with_role_first_choices_always_and_usage_on_finish(
    server: str, alice_key: str, smollm: LLMModel
) -> None:
    body = {"model": "smollm2:135m", "messages": HELLO, "max_tokens": 6, "stream": True, "temperature": 0}
    with httpx.stream(
        "POST", f"{server}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {alice_key}"}, timeout=120
    ) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["Cache-Control"] == "no-cache"
        events = list(sse_events(response))
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and isinstance(c["choices"], list) for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all("role" not in c["choices"][0]["delta"] for c in chunks[1:])
    assert len({c["id"] for c in chunks}) == 1
    finish = chunks[-1]
    assert finish["choices"][0]["finish_reason"] in ("stop", "length")
    assert finish["usage"]["completion_tokens"] > 0
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])


def test_chat_stream_through_the_official_client(openai_client: Callable[..., openai.OpenAI], alice_key: str, smollm: LLMModel) -> None:
    stream = openai_client(alice_key).chat.completions.create(
        model="smollm2:135m", messages=HELLO, max_tokens=6, temperature=0, stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    # Asked for include_usage: OpenAI's separate usage chunk with no choices ends the stream.
    assert chunks[-1].choices == [] and chunks[-1].usage and chunks[-1].usage.completion_tokens > 0
    assert chunks[-2].choices[0].finish_reason in ("stop", "length") and chunks[-2].usage is None


def test_chatbox_style_body_is_accepted(openai_client: Callable[..., openai.OpenAI], alice_key: str, smollm: LLMModel) -> None:
    """Image parts, tools, reasoning_content and tool messages: SmolLM2 has no vision, so the
    image is dropped and the text answered."""
    messages = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": [{"type": "text", "text": "What is in this picture?"}, {"type": "image_url", "image_url": {"url": PIXEL}}]},
        {"role": "assistant", "content": None, "reasoning_content": "Let me look.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "A white pixel."},
        {"role": "user", "content": "So, what is it?"},
    ]
    tools = [{"type": "function", "function": {"name": "look", "description": "Look", "parameters": {"type": "object", "properties": {}}}}]
    answer = openai_client(alice_key).chat.completions.create(
        model="smollm2:135m", messages=messages, tools=tools, tool_choice="auto", max_tokens=5, top_p=0.9, temperature=0  # type: ignore[arg-type]
    )
    assert answer.choices[0].message.content


def test_text_completion_streaming_and_not(openai_client: Callable[..., openai.OpenAI], alice_key: str, smollm: LLMModel) -> None:
    client = openai_client(alice_key)
    whole = client.completions.create(model="smollm2:135m", prompt="1, 2, 3, 4,", max_tokens=4, temperature=0)
    assert whole.object == "text_completion" and whole.choices[0].text.strip().startswith("5")
    assert whole.usage and whole.usage.prompt_tokens < 12  # raw: no chat template around it
    chunks = list(client.completions.create(model="smollm2:135m", prompt="1, 2, 3, 4,", max_tokens=4, temperature=0, stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices).strip().startswith("5")
    assert chunks[-1].choices[0].finish_reason in ("stop", "length") and chunks[-1].usage


def test_errors_use_openai_shapes_and_4xx_codes(openai_client: Callable[..., openai.OpenAI], alice_key: str, smollm: LLMModel) -> None:
    client = openai_client(alice_key)
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="nope", messages=HELLO, stream=True)
    assert missing.value.body["message"] == "model 'nope' not found"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="smollm2:135m", messages=[{"role": "user", "content": 5}])  # type: ignore[list-item]
    assert bad.value.body["param"] == "messages.0.content"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="smollm2:135m", messages=[])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="smollm2:135m", messages=HELLO, n=2)


def test_key_prefix_works_for_the_openai_client(
    server: str, openai_client: Callable[..., openai.OpenAI], alice_key: str, smollm: LLMModel
) -> None:
    client = openai_client("ollama", base_url=f"{server}/u/{alice_key}/v1")
    assert [m.id for m in client.models.list()] == ["smollm2:135m"]
    reply = client.chat.completions.create(model="smollm2:135m", messages=HELLO, max_tokens=3, temperature=0)
    assert reply.choices[0].message.content


def test_restricted_model_cannot_be_used_by_others(
    openai_client: Callable[..., openai.OpenAI], alice_key: str, bob_key: str, restricted_model: LLMModel
) -> None:
    reply = openai_client(alice_key).chat.completions.create(model="alices-model", messages=HELLO, max_tokens=3, temperature=0)
    assert reply.choices[0].message.content
    with pytest.raises(openai.NotFoundError):
        openai_client(bob_key).chat.completions.create(model="alices-model", messages=HELLO, max_tokens=3, temperature=0)
    with pytest.raises(openai.NotFoundError):
        openai_client(bob_key).completions.create(model="alices-model:latest", prompt="Hi", max_tokens=2)
