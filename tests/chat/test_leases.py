"""Answers whose web process died: each running answer holds a lease that its job renews
(with a checkpoint of its text); only answers whose lease ran out are finalised, so a node that
restarts (or the beat) never ends another node's running answers."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AbstractUser
from django.utils import timezone

from chat.models import Conversation, Message, MessageStatus, Role
from chat.services import message_checkpoint, messages_interrupted
from inference.engines import embedded_engine
from models_admin.models import LLMModel
from models_admin.selectors import model_spec

from .helpers import connect, receive_until


def _answer(conversation: Conversation, **fields: Any) -> Message:
    return Message.objects.create(conversation=conversation, role=Role.ASSISTANT, status=MessageStatus.STREAMING, **fields)


async def _answering(alice: AbstractUser, prompt: str) -> tuple[Conversation, WebsocketCommunicator, dict[str, Any]]:
    """Alice's new chat, her socket on it, and the first delta of the answer to ``prompt``."""
    chat = await Conversation.objects.acreate(owner=alice, title="Leases")
    socket, connected = await connect(alice, chat.id)
    assert connected
    await socket.send_json_to({"type": "send", "content": prompt})
    first, _ = await receive_until(socket, "delta")
    return chat, socket, first


@pytest.fixture
def chat(alice: AbstractUser) -> Conversation:
    return Conversation.objects.create(owner=alice, title="Leases")


@pytest.mark.django_db
def test_only_answers_whose_lease_ran_out_are_finalised_with_their_text(chat: Conversation, settings: Any) -> None:
    settings.GENERATION_LEASE_SECONDS = 30
    now = timezone.now()
    lost = _answer(chat, content="Once upon a", lease_until=now - timedelta(seconds=1))
    renewed = _answer(chat, content="The sea", lease_until=now + timedelta(seconds=20))
    just_started = _answer(chat)  # no lease yet: counted from its creation
    never_leased = _answer(chat)
    Message.objects.filter(pk=never_leased.pk).update(created_at=now - timedelta(seconds=31))
    finished = _answer(chat, lease_until=now - timedelta(hours=1))
    Message.objects.filter(pk=finished.pk).update(status=MessageStatus.COMPLETE)

    failed = messages_interrupted()

    assert sorted(m.pk for m in failed) == sorted([lost.pk, never_leased.pk])
    lost.refresh_from_db()
    assert (lost.status, lost.content) == (MessageStatus.ERROR, "Once upon a")
    assert lost.error == "The server restarted while this answer was being generated." and lost.finished_at
    for alive in (renewed, just_started):
        alive.refresh_from_db()
        assert alive.status == MessageStatus.STREAMING
    finished.refresh_from_db()
    assert finished.status == MessageStatus.COMPLETE and not finished.error
    assert messages_interrupted() == []  # a second sweep finds nothing


@pytest.mark.django_db
def test_a_checkpoint_renews_the_lease_but_never_reopens_a_finished_answer(chat: Conversation) -> None:
    running = _answer(chat)
    assert message_checkpoint(message_id=running.pk, content="partial", lease_seconds=30)
    running.refresh_from_db()
    assert running.content == "partial" and running.lease_until > timezone.now() + timedelta(seconds=25)
    Message.objects.filter(pk=running.pk).update(status=MessageStatus.COMPLETE, content="the whole answer")
    assert not message_checkpoint(message_id=running.pk, content="partial", lease_seconds=30)
    running.refresh_from_db()
    assert (running.status, running.content) == (MessageStatus.COMPLETE, "the whole answer")


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_long_answer_checkpoints_its_text_and_an_open_tab_hears_of_a_lost_one(
    alice: AbstractUser, smollm: LLMModel, settings: Any
) -> None:
    settings.GENERATION_CHECKPOINT_SECONDS = 0.2
    settings.GENERATION_LEASE_SECONDS = 30
    await LLMModel.objects.filter(pk=smollm.pk).aupdate(max_tokens=300)
    chat, socket, _first = await _answering(alice, "Write a long story about the sea.")
    await asyncio.sleep(0.6)
    answer = await Message.objects.aget(conversation=chat, role=Role.ASSISTANT)
    # Written while streaming: the text so far and a lease ahead of now.
    assert answer.status == MessageStatus.STREAMING and answer.content
    assert answer.lease_until is not None and answer.lease_until > timezone.now() + timedelta(seconds=25)
    await socket.send_json_to({"type": "stop"})
    done, _ = await receive_until(socket, "done")
    assert done["status"] == "stopped"


    # A lost answer (its process gone) is announced to the tabs still open on it.
    lost = await database_sync_to_async(_answer)(chat, content="half a", lease_until=timezone.now() - timedelta(seconds=1))
    assert [m.pk for m in await database_sync_to_async(messages_interrupted)()] == [lost.pk]
    announced, _ = await receive_until(socket, "done", timeout=10)
    assert announced == {"type": "done", "id": lost.pk, "status": "error", "content": "half a",
                         "error": "The server restarted while this answer was being generated.", "cut_off": False}
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_model_loading_in_this_process_first_holds_the_leases_of_the_answers_running_here(
    alice: AbstractUser, smollm: LLMModel, settings: Any
) -> None:
    """A load holds the GIL until it is done (xllamacpp), so no lease is renewed meanwhile: a
    long one (a big model, a cold disk) let another node's sweep end this node's running
    answers as "the server restarted" while they were still streaming."""
    settings.GENERATION_CHECKPOINT_SECONDS = 60  # the lease taken at the start, then none here
    settings.GENERATION_LEASE_SECONDS = 2
    settings.GENERATION_LOAD_GRACE_SECONDS = 120
    # Greedy, so the answer runs to its cap and is still streaming when it is stopped (a
    # sampled one once ended by itself first).
    await LLMModel.objects.filter(pk=smollm.pk).aupdate(max_tokens=400, parameters={"temperature": 0})
    spec = await database_sync_to_async(model_spec)(smollm)
    engine = embedded_engine()
    await engine.load_async(spec)  # loaded before the answer starts: its lease is the usual one
    chat, socket, _first = await _answering(alice, "Write a long story about the sea.")
    answer = await Message.objects.aget(conversation=chat, role=Role.ASSISTANT)
    assert answer.lease_until is not None and answer.lease_until < timezone.now() + timedelta(seconds=3)

    # Another model (the same file with its own context: a load of its own) loads meanwhile.
    other = dataclasses.replace(spec, key="other:latest", context_length=spec.context_length // 2)
    loading_from = timezone.now()
    try:
        await engine.load_async(other)
    finally:
        await asyncio.to_thread(engine.unload, other)
    await answer.arefresh_from_db()
    assert answer.status == MessageStatus.STREAMING
    assert answer.lease_until >= loading_from + timedelta(seconds=121), (loading_from, answer.lease_until)

    await asyncio.sleep(2.5)  # past the lease the answer took at its start
    assert await database_sync_to_async(messages_interrupted)() == []
    await socket.send_json_to({"type": "stop"})
    done, streamed = await receive_until(socket, "done")
    assert done["status"] == "stopped" and not [e for e in streamed if e["type"] == "done"]
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_an_answer_the_sweep_took_for_dead_while_it_ran_is_put_back_whole_by_its_job(
    alice: AbstractUser, smollm: LLMModel, settings: Any
) -> None:
    """A process that stood still past its lease (a machine swapping) is taken for dead: the
    tabs hear "restarted"; its job goes on, and its own ending puts the whole answer back."""
    settings.GENERATION_CHECKPOINT_SECONDS = 60  # no renewal during the test after the first
    settings.GENERATION_LEASE_SECONDS = 30
    await LLMModel.objects.filter(pk=smollm.pk).aupdate(max_tokens=60)
    _chat, socket, first = await _answering(alice, "Tell me about the sea.")
    # The lease it took is over (as if this process had stood still for 30 s), and a sweep runs.
    await Message.objects.filter(pk=first["id"]).aupdate(lease_until=timezone.now() - timedelta(seconds=1))
    assert [m.pk for m in await database_sync_to_async(messages_interrupted)()] == [first["id"]]

    taken, _ = await receive_until(socket, "done")
    assert (taken["id"], taken["status"]) == (first["id"], "error")
    done, _ = await receive_until(socket, "done")
    assert (done["id"], done["status"]) == (first["id"], "complete") and len(done["content"]) > len(taken["content"])
    answer = await Message.objects.aget(pk=first["id"])
    assert (answer.status, answer.content, answer.error) == (MessageStatus.COMPLETE, done["content"], "")
    await socket.disconnect()
