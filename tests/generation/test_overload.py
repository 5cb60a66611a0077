"""More answers of one model than its queue holds: a clear "busy, try again" (503 with
Retry-After, in each protocol's shape, an error frame in the browser), nothing queued
without bound, and the places come back when answers end."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import AbstractUser

from accounts.services import api_key_create
from chat.models import Conversation, Message
from generation import limits
from models_admin.models import LLMModel
from tests.chat.helpers import connect

from .asgi import AsgiCall

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

LONG = {"model": "smollm2:135m", "messages": [{"role": "user", "content": "Write a very long story."}],
        "max_tokens": 400, "stream": True}


async def _key(user: AbstractUser) -> str:
    return (await database_sync_to_async(api_key_create)(user=user, name="tests"))[1]


async def test_beyond_the_models_queue_everyone_gets_busy_try_again_until_a_place_frees(
    alice: AbstractUser, bob: AbstractUser, smollm: LLMModel, settings: Any
) -> None:
    settings.MAX_GENERATIONS_PER_MODEL = 2
    settings.MAX_CONCURRENT_GENERATIONS_PER_USER = 5
    alice_key, bob_key = await _key(alice), await _key(bob)
    running = [AsgiCall("POST", "/v1/chat/completions", LONG, {"Authorization": f"Bearer {alice_key}"}) for _ in range(2)]
    for call in running:
        await call.read_until(b'"content"')
    assert limits.running_for_model(smollm.full_name) == 2

    # Bob, another user, is told the model is busy, in OpenAI's shape and in Ollama's.
    openai_call = AsgiCall("POST", "/v1/chat/completions", {**LONG, "stream": False}, {"Authorization": f"Bearer {bob_key}"})
    await openai_call.read_all()
    assert openai_call.status == 503
    assert openai_call.headers["retry-after"] == "2"
    assert openai_call.json()["error"]["code"] == "engine_busy"
    assert "busy" in openai_call.json()["error"]["message"]
    ollama_call = AsgiCall("POST", "/api/chat", {"model": "smollm2:135m", "messages": LONG["messages"]},
                           {"Authorization": f"Bearer {bob_key}"})
    await ollama_call.read_all()
    assert ollama_call.status == 503 and "busy" in ollama_call.json()["error"]

    # In the browser: an error frame that says so; nothing is stored.
    chat = await Conversation.objects.acreate(owner=bob, title="Busy")
    socket, connected = await connect(bob, chat.id)
    assert connected
    await socket.send_json_to({"type": "send", "content": "Hello?"})
    frame = json.loads(await socket.receive_from(timeout=10))
    assert frame["type"] == "error" and "busy" in frame["error"], frame
    assert not await Message.objects.filter(conversation=chat).aexists()
    await socket.disconnect()

    for call in running:
        await call.hang_up()
    assert limits.running_for_model(smollm.full_name) == 0
    again = AsgiCall("POST", "/v1/chat/completions", {**LONG, "max_tokens": 2, "stream": False}, {"Authorization": f"Bearer {bob_key}"})
    await again.read_all()
    assert again.status == 200
    assert limits.running_for_model(smollm.full_name) == 0
