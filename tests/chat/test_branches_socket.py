"""Edit, regenerate and continue over the real socket: every branch stays reachable."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import AbstractUser

from chat import tree
from chat.models import Conversation, Message, MessageStatus, TitleSource
from chat.services import conversation_create, conversation_rename
from chat.titles import auto_title, tidy
from models_admin.models import LLMModel

from .helpers import connect, receive_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

LONG_PROMPT = "Write a very long, detailed story about a lighthouse keeper, with many chapters."


@pytest.fixture
def chat(alice: AbstractUser, smollm: LLMModel, settings: Any) -> Conversation:
    settings.DEFAULT_MAX_TOKENS = 16
    return conversation_create(owner=alice)


async def _path(conversation: Conversation) -> list[Message]:
    fresh = await Conversation.objects.aget(pk=conversation.pk)
    return (await database_sync_to_async(tree.thread)(fresh)).path


async def test_regenerate_adds_a_sibling_answer_and_both_stay_reachable(alice: AbstractUser, chat: Conversation) -> None:
    socket, _ = await connect(alice, chat.id)
    await socket.send_json_to({"type": "send", "content": "Name a colour."})
    first, _events = await receive_until(socket, "done")
    await socket.send_json_to({"type": "regenerate", "message_id": first["id"]})
    second, events = await receive_until(socket, "done")

    [placeholder] = [e["message"] for e in events if e["type"] == "message"]
    assert placeholder["siblings"] == [first["id"], second["id"]]
    path = await _path(chat)
    assert [m.id for m in path][-1] == second["id"]
    assert path[-1].parent_id == (await Message.objects.aget(pk=first["id"])).parent_id
    await socket.disconnect()


async def test_editing_a_message_sends_it_as_a_new_branch(alice: AbstractUser, chat: Conversation) -> None:
    socket, _ = await connect(alice, chat.id)
    await socket.send_json_to({"type": "send", "content": "First question"})
    await receive_until(socket, "done")
    await socket.send_json_to({"type": "send", "content": "Follow-up"})
    done, events = await receive_until(socket, "done")
    follow_up = next(e["message"] for e in events if e["type"] == "message" and e["message"]["role"] == "user")

    # Edit the follow-up: same parent as the original follow-up.
    await socket.send_json_to({"type": "send", "content": "Follow-up, edited", "parent_id": follow_up["parent_id"]})
    _done, events = await receive_until(socket, "done")
    edited = next(e["message"] for e in events if e["type"] == "message" and e["message"]["role"] == "user")
    assert edited["siblings"] == [follow_up["id"], edited["id"]]
    assert [m.content for m in await _path(chat)][:3] == ["First question", (await _path(chat))[1].content, "Follow-up, edited"]

    # Edit the very first message: a new root.
    await socket.send_json_to({"type": "send", "content": "Another start", "parent_id": None})
    _done, events = await receive_until(socket, "done")
    root = next(e["message"] for e in events if e["type"] == "message" and e["message"]["role"] == "user")
    assert root["parent_id"] is None and len(root["siblings"]) == 2
    assert [m.content for m in await _path(chat)][0] == "Another start"
    assert await Message.objects.filter(conversation=chat).acount() == 8  # nothing was lost
    await socket.disconnect()


async def test_parent_ids_from_elsewhere_or_of_the_wrong_kind_are_refused(alice: AbstractUser, bob: AbstractUser, chat: Conversation) -> None:
    bobs = await database_sync_to_async(conversation_create)(owner=bob)
    foreign = await Message.objects.acreate(conversation=bobs, role="assistant", content="bob's")
    socket, _ = await connect(alice, chat.id)
    await socket.send_json_to({"type": "send", "content": "hi"})
    await receive_until(socket, "done")
    user_message = await Message.objects.filter(conversation=chat, role="user").afirst()
    assert user_message is not None
    for parent in (foreign.id, user_message.id, "12", 10**12):
        await socket.send_json_to({"type": "send", "content": "x", "parent_id": parent})
        error, _before = await receive_until(socket, "error", timeout=5)
        assert error["error"], parent
    await socket.send_json_to({"type": "regenerate", "message_id": foreign.id})
    assert (await receive_until(socket, "error", timeout=5))[0]["error"]
    assert await Message.objects.filter(conversation=chat).acount() == 2
    await socket.disconnect()


async def test_an_answer_cut_at_the_length_limit_is_marked_and_can_be_continued(alice: AbstractUser, chat: Conversation) -> None:
    socket, _ = await connect(alice, chat.id)
    await socket.send_json_to({"type": "send", "content": LONG_PROMPT})
    done, _events = await receive_until(socket, "done")
    assert done["status"] == "complete" and done["cut_off"] is True
    before = done["content"]
    assert (await Message.objects.aget(pk=done["id"])).cut_off

    await socket.send_json_to({"type": "continue", "message_id": done["id"]})
    more, events = await receive_until(socket, "done")
    assert [e["type"] for e in events if e["type"] in ("continue", "message")] == ["continue"]
    deltas = [e for e in events if e["type"] == "delta"]
    assert deltas, more  # the engine went on from the cut, it did not start a new turn
    assert deltas[0]["start"] == len(before)
    assert more["id"] == done["id"] and more["content"].startswith(before) and len(more["content"]) > len(before)
    answer = await Message.objects.aget(pk=done["id"])
    assert answer.content == more["content"] and answer.status == MessageStatus.COMPLETE

    # A complete answer that was not cut off cannot be "continued".
    await Message.objects.filter(pk=done["id"]).aupdate(cut_off=False)
    await socket.send_json_to({"type": "continue", "message_id": done["id"]})
    error, _before = await receive_until(socket, "error", timeout=5)
    assert "complete" in error["error"]
    await socket.disconnect()


async def test_automatic_title_replaces_the_placeholder_unless_renamed(alice: AbstractUser, chat: Conversation, settings: Any) -> None:
    settings.CHAT_AUTO_TITLE = True
    socket, _ = await connect(alice, chat.id)
    await socket.send_json_to({"type": "send", "content": "How do I bake sourdough bread at home with a starter?"})
    done, events = await receive_until(socket, "done")
    placeholder = next(e["title"] for e in events if e["type"] == "message")
    assert placeholder == "How do I bake sourdough bread at home with a starter?"
    renamed, _before = await receive_until(socket, "conversation", timeout=30)
    assert renamed["action"] == "renamed"
    stored = await Conversation.objects.aget(pk=chat.pk)
    assert stored.title == renamed["title"] and stored.title != placeholder
    assert stored.title_source == TitleSource.AUTO
    await socket.disconnect()

    # A rename wins: a title generated afterwards is not stored.
    await database_sync_to_async(conversation_rename)(conversation=stored, title="Bread")
    assert await auto_title(conversation_id=str(chat.id), user_id=alice.pk, model_name="smollm2:135m") == ""
    assert (await Conversation.objects.aget(pk=chat.pk)).title == "Bread"


async def test_titles_are_tidied_from_what_models_write() -> None:
    assert tidy('Title: "Baking Sourdough Bread."\nMore text') == "Baking Sourdough Bread"
    assert tidy("   \n**Trip to Lisbon**") == "Trip to Lisbon"
    assert tidy("") == ""
