"""Colleagues on one conversation over the real socket: who may do what, and every open tab
hearing the same thing (real ASGI app, real channel layer, real llama.cpp engine)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AbstractUser
from django.test import Client

from chat.models import Message, MessageStatus
from models_admin.models import LLMModel
from platform.asgi import application

from .helpers import apply_deltas, receive_until, session_cookie
from .personas import Team, make_team

LONG_PROMPT = "Write a very long, detailed story about a lighthouse keeper, with many chapters."

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest.fixture
def team(alice: AbstractUser, bob: AbstractUser, charlie: AbstractUser, smollm: LLMModel, settings: Any) -> Team:
    settings.DEFAULT_MAX_TOKENS = 24
    return make_team(alice, bob, charlie)


async def open_socket(user: AbstractUser, conversation_id: object) -> tuple[WebsocketCommunicator, bool, int | str | None]:
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1"),
               (b"cookie", f"sessionid={await session_cookie(user)}".encode())]
    socket = WebsocketCommunicator(application, f"/ws/c/{conversation_id}/", headers=headers)
    connected, detail = await socket.connect(timeout=10)
    if connected:  # the frames every socket gets on connect: its access, the last answer
        await receive_until(socket, "access", timeout=5)
        while not await socket.receive_nothing(timeout=0.2):
            await socket.receive_from()
    return socket, connected, detail


async def closed_with(socket: WebsocketCommunicator, timeout: float = 10) -> int:
    """Read frames until the server closes; returns the close code."""
    while True:
        message = await socket.receive_output(timeout=timeout)
        if message["type"] == "websocket.close":
            return int(message.get("code", 1000))


@sync_to_async
def http_post(user: AbstractUser, url: str, body: dict[str, Any] | None = None) -> int:
    client = Client()
    client.force_login(user)
    return client.post(url, json.dumps(body or {}), content_type="application/json").status_code


async def test_outsider_socket_is_closed_with_4404(team: Team) -> None:
    _socket, connected, code = await open_socket(team.dave, team.conversation.id)
    assert (connected, code) == (False, 4404)


async def test_each_socket_is_told_its_access_level(team: Team) -> None:
    for person, level in ((team.alice, "owner"), (team.bob, "write"), (team.charlie, "read"), (team.erin, "read")):
        headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1"),
                   (b"cookie", f"sessionid={await session_cookie(person)}".encode())]
        socket = WebsocketCommunicator(application, f"/ws/c/{team.conversation.id}/", headers=headers)
        assert (await socket.connect(timeout=10))[0], person.username
        frame, _before = await receive_until(socket, "access", timeout=5)
        assert frame["level"] == level
        await socket.disconnect()


async def test_viewer_cannot_send_regenerate_continue_or_stop(team: Team) -> None:
    socket, _connected, _ = await open_socket(team.charlie, team.conversation.id)
    answer = await Message.objects.filter(conversation=team.conversation, role="assistant").afirst()
    assert answer is not None
    for frame in ({"type": "send", "content": "let me in"}, {"type": "regenerate", "message_id": answer.id},
                  {"type": "continue", "message_id": answer.id}, {"type": "stop"}):
        await socket.send_json_to(frame)
        error, _before = await receive_until(socket, "error", timeout=5)
        assert error["code"] == "read_only", frame
        assert "cannot" in error["error"] or "not write" in error["error"]
    assert await Message.objects.filter(conversation=team.conversation).acount() == 2
    await socket.disconnect()


async def test_editors_message_and_answer_reach_the_owners_tab_live(team: Team) -> None:
    alice, _c, _ = await open_socket(team.alice, team.conversation.id)
    bob, _c, _ = await open_socket(team.bob, team.conversation.id)
    await bob.send_json_to({"type": "send", "content": "Say hello to the launch team."})

    done_alice, seen_alice = await receive_until(alice, "done")
    done_bob, _seen_bob = await receive_until(bob, "done")

    stored = [e["message"] for e in seen_alice if e["type"] == "message"]
    assert [(m["role"], m["author"]) for m in stored] == [("user", "bob"), ("assistant", "bob")]
    assert stored[0]["parent_id"] is not None  # it follows the last answer shown
    deltas = [e for e in seen_alice if e["type"] == "delta"]
    assert deltas and apply_deltas(deltas) == done_alice["content"] == done_bob["content"]
    answer = await Message.objects.select_related("author").aget(pk=done_alice["id"])
    assert answer.status == MessageStatus.COMPLETE and answer.author.username == "bob"
    await alice.disconnect()
    await bob.disconnect()


async def test_one_answer_at_a_time_and_the_others_see_who_started_it(team: Team, settings: Any) -> None:
    settings.DEFAULT_MAX_TOKENS = 2000
    bob, _c, _ = await open_socket(team.bob, team.conversation.id)
    alice, _c, _ = await open_socket(team.alice, team.conversation.id)
    await bob.send_json_to({"type": "send", "content": LONG_PROMPT})
    await receive_until(alice, "delta")
    await alice.send_json_to({"type": "send", "content": "Me too"})
    error, _before = await receive_until(alice, "error", timeout=10)
    assert "bob" in error["error"]
    await alice.send_json_to({"type": "stop"})  # the owner may stop a colleague's answer
    done, _before = await receive_until(bob, "done", timeout=10)
    assert done["status"] == "stopped"
    assert await Message.objects.filter(conversation=team.conversation, content="Me too").acount() == 0
    await alice.disconnect()
    await bob.disconnect()


async def test_revoked_share_closes_the_open_socket_with_4403(team: Team) -> None:
    erin, _c, _ = await open_socket(team.erin, team.conversation.id)
    status = await http_post(team.alice, f"/c/{team.conversation.id}/shares/{team.erin.pk}/remove/")
    assert status == 200
    frame, _before = await receive_until(erin, "access", timeout=5)
    assert frame["level"] == "none"
    assert await closed_with(erin) == 4403


async def test_deleting_closes_every_open_tab_with_4404_after_telling_it(team: Team) -> None:
    bob, _c, _ = await open_socket(team.bob, team.conversation.id)
    charlie, _c, _ = await open_socket(team.charlie, team.conversation.id)
    assert await http_post(team.alice, f"/c/{team.conversation.id}/delete/") == 204
    for socket in (bob, charlie):
        frame, _before = await receive_until(socket, "conversation", timeout=5)
        assert (frame["action"], frame["id"]) == ("deleted", str(team.conversation.id))
        assert await closed_with(socket) == 4404


async def test_rename_reaches_open_tabs_and_members_sidebars(team: Team) -> None:
    bob, _c, _ = await open_socket(team.bob, team.conversation.id)
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1"),
               (b"cookie", f"sessionid={await session_cookie(team.charlie)}".encode())]
    home = WebsocketCommunicator(application, "/ws/home/", headers=headers)
    assert (await home.connect(timeout=10))[0]
    assert await http_post(team.alice, f"/c/{team.conversation.id}/rename/", {"title": "<i>New</i> date"}) == 200
    for socket in (bob, home):
        frame, _before = await receive_until(socket, "conversation", timeout=5)
        assert (frame["action"], frame["title"]) == ("renamed", "<i>New</i> date")
    outsider_home = WebsocketCommunicator(application, "/ws/home/", headers=[
        (b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1"),
        (b"cookie", f"sessionid={await session_cookie(team.dave)}".encode())])
    assert (await outsider_home.connect(timeout=10))[0]
    assert await http_post(team.alice, f"/c/{team.conversation.id}/rename/", {"title": "Again"}) == 200
    assert await outsider_home.receive_nothing(timeout=0.5)
    for socket in (bob, home, outsider_home):
        await socket.disconnect()


async def test_a_member_removed_from_the_project_loses_the_open_socket(team: Team) -> None:
    bob, _c, _ = await open_socket(team.bob, team.conversation.id)

    @sync_to_async
    def remove_bob() -> None:
        from django.db import transaction

        from projects.models import Membership
        from webio.groups import access_changed_for

        with transaction.atomic():
            Membership.objects.filter(project=team.project, user=team.bob).delete()
            access_changed_for([team.bob.pk])

    await remove_bob()
    frame, _before = await receive_until(bob, "access", timeout=5)
    assert frame["level"] == "none"
    assert await closed_with(bob) == 4403
