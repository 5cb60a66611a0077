"""Answers whose web process died: each running answer holds a lease that its job renews
(with a checkpoint of its text); only answers whose lease ran out are finalised, so a node that
restarts (or the beat) never ends another node's running answers."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import AbstractUser
from django.utils import timezone

from chat.models import Conversation, Message, MessageStatus, Role
from chat.services import message_checkpoint, messages_interrupted
from models_admin.models import LLMModel

from .helpers import connect, receive_until


def _answer(conversation: Conversation, **fields: Any) -> Message:
    return Message.objects.create(conversation=conversation, role=Role.ASSISTANT, status=MessageStatus.STREAMING, **fields)


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
    chat = await Conversation.objects.acreate(owner=alice, title="Leases")
    socket, connected = await connect(alice, chat.id)
    assert connected
    await socket.send_json_to({"type": "send", "content": "Write a long story about the sea."})
    await receive_until(socket, "delta")
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
