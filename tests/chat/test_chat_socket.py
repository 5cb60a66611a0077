"""The chat socket end to end: real ASGI app, real channel layer, real llama.cpp engine."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AbstractUser

from chat.generation import RUNNING
from chat.models import Conversation, Message, MessageStatus
from chat.services import conversation_create
from inference.engines import embedded_engine
from accounts.models import UsageRecord
from models_admin.models import LLMModel
from models_admin.selectors import model_spec

from .helpers import apply_deltas, connect, count_queries, receive_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

LONG_PROMPT = "Write a very long, detailed story about a lighthouse keeper, with many chapters."


@pytest.fixture
def short_answers(settings: Any) -> None:
    settings.DEFAULT_MAX_TOKENS = 40


@pytest.fixture
def alices_chat(alice: AbstractUser, smollm: LLMModel) -> Conversation:
    return conversation_create(owner=alice)


async def _engine_busy_slots(model: LLMModel) -> int:
    spec = await database_sync_to_async(model_spec)(model)
    url = embedded_engine().loaded_url(spec)
    assert url, "the model should be loaded in the engine"
    async with httpx.AsyncClient() as client:
        slots = (await client.get(url + "/slots")).json()
    return sum(1 for slot in slots if slot["is_processing"])


async def _long_answer_running(
    alice: AbstractUser, chat: Conversation, settings: Any
) -> tuple[WebsocketCommunicator, dict[str, Any]]:
    """Alice's socket on ``chat`` and the first delta of a long answer, streaming for a moment."""
    settings.DEFAULT_MAX_TOKENS = 2000
    socket, _ = await connect(alice, chat.id)
    await socket.send_json_to({"type": "send", "content": LONG_PROMPT})
    first, _events = await receive_until(socket, "delta")
    await asyncio.sleep(0.3)
    return socket, first


async def test_answer_streams_token_by_token_and_is_stored_once(
    alice: AbstractUser, alices_chat: Conversation, short_answers: None
) -> None:
    socket, connected = await connect(alice, alices_chat.id)
    assert connected
    await socket.send_json_to({"type": "send", "content": "Say hello to the team."})

    done, events = await receive_until(socket, "done")

    stored = [e["message"] for e in events if e["type"] == "message"]
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert stored[1]["status"] == "streaming"
    deltas = [e for e in events if e["type"] == "delta"]
    assert len(deltas) >= 2, "the answer should arrive in several pieces"
    assert deltas[0]["start"] == 0
    assert done["status"] == "complete"
    assert done["content"] and apply_deltas(deltas) == done["content"]

    answer = await Message.objects.aget(pk=done["id"])
    assert answer.status == MessageStatus.COMPLETE
    assert answer.content == done["content"]
    assert answer.completion_tokens > 0 and answer.prompt_tokens > 0
    assert await UsageRecord.objects.filter(user=alice, model_name="smollm2:135m").aexists()
    await socket.disconnect()


async def test_outsider_cannot_connect_to_chat(bob: AbstractUser, alices_chat: Conversation) -> None:
    _socket, connected = await connect(bob, alices_chat.id)
    assert not connected


async def test_anonymous_cannot_connect_to_chat(alices_chat: Conversation) -> None:
    _socket, connected = await connect(None, alices_chat.id)
    assert not connected


async def test_unknown_conversation_is_refused(alice: AbstractUser, smollm: LLMModel) -> None:
    _socket, connected = await connect(alice, "00000000-0000-0000-0000-000000000000")
    assert not connected


async def test_empty_and_malformed_messages_get_a_clear_error(alice: AbstractUser, alices_chat: Conversation) -> None:
    socket, _ = await connect(alice, alices_chat.id)
    await socket.send_json_to({"type": "send", "content": "   "})
    error, _events = await receive_until(socket, "error", timeout=5)
    assert "empty" in error["error"]
    await socket.send_json_to({"type": "send", "content": ["not", "text"]})
    error, _events = await receive_until(socket, "error", timeout=5)
    assert "malformed" in error["error"]
    await socket.send_json_to({"type": "send", "content": "hi", "model": "no-such-model"})
    error, _events = await receive_until(socket, "error", timeout=5)
    assert "not available" in error["error"]
    assert await Message.objects.filter(conversation=alices_chat).acount() == 0
    await socket.disconnect()


async def test_stop_cancels_the_engine_request_and_keeps_the_partial_answer(
    alice: AbstractUser, alices_chat: Conversation, smollm: LLMModel, settings: Any
) -> None:
    socket, _first = await _long_answer_running(alice, alices_chat, settings)
    assert await _engine_busy_slots(smollm) == 1

    await socket.send_json_to({"type": "stop"})
    done, _events = await receive_until(socket, "done", timeout=5)

    assert done["status"] == "stopped"
    assert done["content"]
    # The engine itself has let go of the request, not only the browser.
    for _ in range(20):
        if await _engine_busy_slots(smollm) == 0:
            break
        await asyncio.sleep(0.05)
    assert await _engine_busy_slots(smollm) == 0
    answer = await Message.objects.aget(pk=done["id"])
    assert answer.status == MessageStatus.STOPPED
    assert answer.content == done["content"]
    await socket.disconnect()


async def test_an_answer_cancelled_by_a_shutdown_is_stored_as_stopped_with_its_usage(
    alice: AbstractUser, alices_chat: Conversation, smollm: LLMModel, settings: Any
) -> None:
    """The server shutting down cancels the answer's job itself, mid-stream (not a Stop)."""
    socket, first = await _long_answer_running(alice, alices_chat, settings)
    job = RUNNING[first["id"]]
    # As the event loop's shutdown does: every task cancelled at once, the job's stream too.
    stream = [task for task in asyncio.all_tasks() if task.get_coro().__qualname__ == "_stream"]
    assert len(stream) == 1
    job.cancel()
    stream[0].cancel()
    await asyncio.wait({job}, timeout=10)
    # The job takes its cancellation as a stop and stores what it has, without an error.
    assert job.done() and not job.cancelled() and job.exception() is None, job

    done, _events = await receive_until(socket, "done", timeout=5)
    assert done["status"] == "stopped" and done["content"]
    answer = await Message.objects.aget(pk=first["id"])
    assert (answer.status, answer.content) == (MessageStatus.STOPPED, done["content"])
    usage = [u async for u in UsageRecord.objects.filter(user=alice).values_list("outcome", "completion_tokens")]
    assert len(usage) == 1 and usage[0][0] == "stopped" and usage[0][1] > 0, usage
    assert await _engine_busy_slots(smollm) == 0
    await socket.disconnect()


async def test_second_socket_joining_mid_answer_gets_the_whole_answer(
    alice: AbstractUser, alices_chat: Conversation, settings: Any
) -> None:
    settings.DEFAULT_MAX_TOKENS = 200
    first, _ = await connect(alice, alices_chat.id)
    await first.send_json_to({"type": "send", "content": LONG_PROMPT})
    await receive_until(first, "delta")
    await asyncio.sleep(0.2)

    second, connected = await connect(alice, alices_chat.id)  # a reload, or a second tab
    assert connected
    done_second, events_second = await receive_until(second, "done")
    done_first, _ = await receive_until(first, "done")

    # Live deltas may overtake the snapshot reply; the offsets make the result the same.
    snapshots = [e for e in events_second if e["type"] == "snapshot"]
    assert len(snapshots) == 1 and snapshots[0]["text"]
    assert done_second["content"] == done_first["content"]
    assert apply_deltas(events_second) == done_second["content"]
    await first.disconnect()
    await second.disconnect()


async def test_engine_failure_mid_answer_keeps_partial_text_and_next_message_works(
    alice: AbstractUser, alices_chat: Conversation, smollm: LLMModel, settings: Any
) -> None:
    settings.DEFAULT_MAX_TOKENS = 2000
    socket, _ = await connect(alice, alices_chat.id)
    await socket.send_json_to({"type": "send", "content": LONG_PROMPT})
    await receive_until(socket, "delta")
    await asyncio.sleep(0.2)
    # A real fault: the engine goes away under the running request.
    spec = await database_sync_to_async(model_spec)(smollm)
    assert await asyncio.to_thread(embedded_engine().unload, spec)

    done, _events = await receive_until(socket, "done", timeout=10)
    assert done["status"] == "error"
    assert "not responding" in done["error"]
    assert done["content"]
    answer = await Message.objects.aget(pk=done["id"])
    assert (answer.status, answer.content) == (MessageStatus.ERROR, done["content"])

    settings.DEFAULT_MAX_TOKENS = 20
    await socket.send_json_to({"type": "send", "content": "Are you back?"})
    done, _events = await receive_until(socket, "done")
    assert done["status"] == "complete" and done["content"]
    await socket.disconnect()


async def test_queries_per_turn_do_not_grow_with_answer_length(
    alice: AbstractUser, alices_chat: Conversation, settings: Any
) -> None:
    socket, _ = await connect(alice, alices_chat.id)
    settings.DEFAULT_MAX_TOKENS = 8
    await socket.send_json_to({"type": "send", "content": "Hello."})
    await receive_until(socket, "done")  # also lets the socket's own connect-time read finish
    counts = []
    for max_tokens in (8, 160):
        settings.DEFAULT_MAX_TOKENS = max_tokens
        with count_queries() as counter:
            await socket.send_json_to({"type": "send", "content": "Tell me about the sea."})
            done, events = await receive_until(socket, "done")
        assert done["status"] == "complete"
        # SQLite opens each transaction with a statement of its own ("BEGIN IMMEDIATE");
        # PostgreSQL does not: count the same work on both.
        counts.append([sql for sql in counter.statements if not sql.startswith("BEGIN")])
    assert len(counts[0]) == len(counts[1]), counts
    assert len(counts[1]) <= 20, counts
    await socket.disconnect()
