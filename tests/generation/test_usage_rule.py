"""The one usage rule: exactly one usage record per answer, from every interface, however the
answer ended, charged for the tokens the engine produced.

Every interface runs through the real ASGI application and the real llama.cpp engine. The
engine error is a real fault: the model is unloaded under the running request. The browser
has Stop; the API's equivalent is a client that hangs up.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import AbstractUser

from accounts.models import UsageOutcome, UsageRecord, UsageSource
from accounts.services import api_key_create
from chat.models import Message, MessageStatus
from chat.services import conversation_create
from generation import limits
from inference.engines import embedded_engine
from models_admin.models import LLMModel
from models_admin.selectors import model_spec
from tests.chat.helpers import connect, receive_until

from .asgi import AsgiCall

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

LONG = "Write a very long, detailed story about a lighthouse keeper, with many chapters."
# Raw completions have no chat template: greedy decoding keeps counting, it does not stop.
COUNTING = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"

# What each API route is asked; ``{tokens}`` is the answer's length cap.
API_BODIES: dict[str, Any] = {
    "/api/chat": lambda tokens, stream: {
        "model": "smollm2:135m", "messages": [{"role": "user", "content": LONG}], "stream": stream,
        "options": {"num_predict": tokens, "temperature": 0},
    },
    "/api/generate": lambda tokens, stream: {
        "model": "smollm2:135m", "prompt": COUNTING, "raw": True, "stream": stream,
        "options": {"num_predict": tokens, "temperature": 0},
    },
    "/v1/chat/completions": lambda tokens, stream: {
        "model": "smollm2:135m", "messages": [{"role": "user", "content": LONG}], "stream": stream,
        "max_tokens": tokens, "temperature": 0,
    },
    "/v1/completions": lambda tokens, stream: {
        "model": "smollm2:135m", "prompt": COUNTING, "stream": stream, "max_tokens": tokens, "temperature": 0,
    },
}
SOURCES = {"/api/chat": UsageSource.OLLAMA, "/api/generate": UsageSource.OLLAMA}


async def _the_one_record(user: AbstractUser) -> UsageRecord:
    """Wait for the record, then make sure no second one follows."""
    for _ in range(200):
        if await UsageRecord.objects.filter(user=user).aexists():
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    records = [record async for record in UsageRecord.objects.filter(user=user)]
    assert len(records) == 1, f"expected exactly one usage record, got {len(records)}"
    return records[0]


async def _unload(model: LLMModel) -> None:
    spec = await database_sync_to_async(model_spec)(model)
    assert await asyncio.to_thread(embedded_engine().unload, spec)


@pytest.mark.parametrize("path", list(API_BODIES))
@pytest.mark.parametrize(
    "ending", ["complete-streamed", "complete-whole", "client_gone-streamed", "client_gone-whole", "error-streamed"]
)
async def test_every_api_answer_records_usage_exactly_once(
    path: str, ending: str, alice: AbstractUser, smollm: LLMModel
) -> None:
    outcome, mode = ending.split("-")
    key = (await database_sync_to_async(api_key_create)(user=alice, name="tests"))[1]
    streamed = mode == "streamed"
    body = API_BODIES[path](12 if outcome == "complete" else 3000, streamed)
    call = AsgiCall("POST", path, body, {"Authorization": f"Bearer {key}"})
    if outcome == "complete":
        await call.read_all()
        assert call.status == 200
    elif outcome == "client_gone":
        if streamed:
            await call.read_until(b'"content"' if "chat" in path else b'"response"' if path == "/api/generate" else b'"text"')
        else:
            await asyncio.sleep(1.5)  # the engine is generating; nothing is sent before the end
        assert not call.complete, "the answer must still be running when the client leaves"
        await call.hang_up()
    else:
        await call.read_until(b'"content"' if "chat" in path else b'"response"' if path == "/api/generate" else b'"text"')
        assert not call.complete
        await _unload(smollm)
        await call.read_all(timeout=20)
        assert b"error" in call.received.splitlines()[-1] or b"error" in call.received[-300:]

    record = await _the_one_record(alice)
    assert record.outcome == (UsageOutcome.CLIENT_GONE if outcome == "client_gone" else outcome)
    assert record.source == SOURCES.get(path, UsageSource.OPENAI)
    assert record.model_name == "smollm2:135m"
    assert record.completion_tokens > 0
    assert record.prompt_tokens > 0
    if outcome == "complete":
        assert record.completion_tokens <= 12
    assert limits.running_for(alice.pk) == 0, "the user's slot must be given back"


@pytest.mark.parametrize("ending", ["complete", "stopped", "error", "socket_closed"])
async def test_every_browser_answer_records_usage_exactly_once(
    ending: str, alice: AbstractUser, smollm: LLMModel, settings: Any
) -> None:
    settings.DEFAULT_MAX_TOKENS = 12 if ending in ("complete", "socket_closed") else 2000
    conversation = await database_sync_to_async(conversation_create)(owner=alice)
    socket, connected = await connect(alice, conversation.id)
    assert connected
    await socket.send_json_to({"type": "send", "content": LONG})
    if ending == "complete":
        done, _ = await receive_until(socket, "done")
    elif ending == "socket_closed":
        # The answer is a server-side job: a closed tab does not end it, it completes.
        await receive_until(socket, "delta")
        await socket.disconnect()
        socket, _ = await connect(alice, conversation.id)
        done, _ = await receive_until(socket, "done")
    else:
        await receive_until(socket, "delta")
        await asyncio.sleep(0.3)
        if ending == "stopped":
            await socket.send_json_to({"type": "stop"})
        else:
            await _unload(smollm)
        done, _ = await receive_until(socket, "done", timeout=20)
    await socket.disconnect()

    expected = {"complete": "complete", "socket_closed": "complete", "stopped": "stopped", "error": "error"}[ending]
    assert done["status"] == expected
    record = await _the_one_record(alice)
    assert (record.outcome, record.source, record.model_name) == (expected, UsageSource.WEB, "smollm2:135m")
    assert record.completion_tokens > 0 and record.prompt_tokens > 0
    # The stored answer carries the same count as the usage record.
    answer = await Message.objects.aget(pk=done["id"])
    assert answer.completion_tokens == record.completion_tokens
    assert answer.status == MessageStatus(expected)
    assert limits.running_for(alice.pk) == 0
