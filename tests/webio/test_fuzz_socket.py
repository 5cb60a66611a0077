"""Hostile frames on the sockets: each gets exactly one ``{"type": "error"}`` frame, the socket
stays open, and a normal message still works afterwards. Unknown socket paths close with 4404.

Through the real ASGI application (channels' ``WebsocketCommunicator``) and, for what only
the server decides (frame types on the wire, the handshake), through daphne over TCP.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AbstractUser
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect
from websockets.typing import Origin

from chat.models import Conversation, Message
from chat.services import conversation_create
from models_admin.models import LLMModel
from platform.asgi import application
from tests.chat.helpers import receive_until, session_cookie
from tests.conftest import LiveServer
from webio.json import BadJson, parse_json
from webio.sockets import SafeJsonConsumer

pytestmark = [pytest.mark.django_db(transaction=True)]

HEADERS = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]

BINARY = "Only text frames with JSON are accepted on this socket."
NOT_OBJECT = 'A request must be a JSON object, such as {"type": "..."}.'
TOO_DEEP = "The request is nested too deeply (at most 32 levels)."
SURROGATE = "The request contains an unpaired surrogate (such as \\ud800), which is not a character and cannot be stored."
NUL = "The request contains a NUL character (\\u0000), which cannot be stored."
TOO_LARGE = "The request is too large (at most 524288 bytes)."
UNKNOWN = "Unknown request."
DEEP = "[" * 100_000 + "]" * 100_000

# (frame, the one error frame's message). A frame is text, or bytes for a binary frame.
HOSTILE_FRAMES: list[tuple[str | bytes, str]] = [
    (b'{"type": "send", "content": "hi"}', BINARY),
    (b"\x00\xff", BINARY),
    (b"", BINARY),
    ("", "The request is malformed: not valid JSON (line 1, column 1)."),
    ('{"type": "send",', "The request is malformed: not valid JSON (line 1, column 17)."),
    ("{'type': 'send'}", "The request is malformed: not valid JSON (line 1, column 2)."),
    ('{"type": "send", "content": "hi"} {}', "The request is malformed: not valid JSON (line 1, column 35)."),
    (DEEP, TOO_DEEP),
    ("[" * 100_000, TOO_DEEP),
    ('{"type": "send", "content": "hi", "x": ' + DEEP + "}", TOO_DEEP),
    ('{"type": "send", "content": "\\ud800"}', SURROGATE),
    ('{"type": "send", "content": "x\\udfffy"}', SURROGATE),
    ('{"type": "send", "content": "hi", "\\udc00": 1}', SURROGATE),
    ('{"type": "send", "content": "\ud800"}', SURROGATE),  # a raw one: only in-process, daphne decodes strictly
    ('{"type": "send", "content": "a\\u0000b"}', NUL),
    ('{"type": "send", "content": NaN}', "The request contains NaN, which is not a JSON number."),
    ('{"type": "send", "content": 1e999}', "The request contains a number that is too large."),
    ('{"type": "send", "content": ' + "9" * 5000 + "}", "The request contains a number that is too large."),
    ('[{"type": "send", "content": "hi"}]', NOT_OBJECT),
    ('"send"', NOT_OBJECT),
    ("42", NOT_OBJECT),
    ("null", NOT_OBJECT),
    ('{"type": "send", "content": "' + "x" * 600_000 + '"}', TOO_LARGE),
    ('{"type": "dance"}', UNKNOWN),
    ("{}", UNKNOWN),
]


def _frame_id(frame: str | bytes) -> str:
    text = repr(frame)
    return text if len(text) <= 40 else f"{text[:30]}...({len(frame)})"


@pytest.fixture
def short_model(smollm: LLMModel) -> LLMModel:
    """Answers of at most two tokens, for this server and the live one (the model row says so)."""
    smollm.max_tokens = 2
    smollm.save(update_fields=["max_tokens"])
    return smollm


@pytest.fixture
def alices_chat(alice: AbstractUser, short_model: LLMModel) -> Conversation:
    return conversation_create(owner=alice)


async def open_socket(user: AbstractUser | None, path: str) -> WebsocketCommunicator:
    headers = list(HEADERS)
    if user is not None:
        headers.append((b"cookie", f"sessionid={await session_cookie(user)}".encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    if path.startswith("/ws/c/"):  # a conversation socket first says what the user may do
        assert json.loads(await communicator.receive_from(timeout=10))["type"] == "access"
    return communicator


async def send_frame(socket: WebsocketCommunicator, frame: str | bytes) -> None:
    # send_input, not send_to: send_to refuses empty frames, which a client can send.
    await socket.send_input({"type": "websocket.receive", ("bytes" if isinstance(frame, bytes) else "text"): frame})


async def assert_one_error(socket: WebsocketCommunicator, message: str, *, quiet: float = 0.05) -> None:
    assert json.loads(await socket.receive_from(timeout=10)) == {"type": "error", "error": message}
    assert await socket.receive_nothing(timeout=quiet, interval=0.005), "exactly one frame per refused request"


async def assert_normal_send_works(socket: WebsocketCommunicator, conversation: Conversation) -> None:
    before = await Message.objects.filter(conversation=conversation).acount()
    await socket.send_json_to({"type": "send", "content": "hi"})
    user_message = json.loads(await socket.receive_from(timeout=30))
    assert user_message["type"] == "message"
    assert {k: user_message["message"][k] for k in ("role", "content", "status")} == {"role": "user", "content": "hi", "status": "complete"}
    placeholder = json.loads(await socket.receive_from(timeout=30))
    assert placeholder["type"] == "message"
    assert {k: placeholder["message"][k] for k in ("role", "content", "status")} == {"role": "assistant", "content": "", "status": "streaming"}
    done, between = await receive_until(socket, "done", timeout=60)
    assert {e["type"] for e in between} <= {"delta"}
    assert (done["id"], done["status"], done["error"]) == (placeholder["message"]["id"], "complete", "")
    assert await Message.objects.filter(conversation=conversation).acount() == before + 2


# ---- The chat socket, in-process -------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(("frame", "message"), HOSTILE_FRAMES, ids=[_frame_id(f) for f, _ in HOSTILE_FRAMES])
async def test_a_hostile_frame_gets_one_error_and_the_chat_socket_stays_usable(
    alice: AbstractUser, alices_chat: Conversation, frame: str | bytes, message: str
) -> None:
    socket = await open_socket(alice, f"/ws/c/{alices_chat.id}/")
    await send_frame(socket, frame)
    await assert_one_error(socket, message)
    assert await Message.objects.filter(conversation=alices_chat).acount() == 0
    # Still open and still reading requests (a real send after all of them: the next test).
    await socket.send_json_to({"type": "dance"})
    await assert_one_error(socket, UNKNOWN)
    await socket.disconnect()


@pytest.mark.asyncio
async def test_all_hostile_frames_in_a_row_on_one_chat_socket(alice: AbstractUser, alices_chat: Conversation) -> None:
    socket = await open_socket(alice, f"/ws/c/{alices_chat.id}/")
    for frame, message in HOSTILE_FRAMES:
        await send_frame(socket, frame)
        await assert_one_error(socket, message)
    await assert_normal_send_works(socket, alices_chat)
    await socket.disconnect()


@pytest.mark.asyncio
async def test_the_frame_limit_is_a_setting(alice: AbstractUser, alices_chat: Conversation, settings: Any) -> None:
    settings.WS_MAX_FRAME_BYTES = 40
    socket = await open_socket(alice, f"/ws/c/{alices_chat.id}/")
    await socket.send_json_to({"type": "send", "content": "x" * 40})
    await assert_one_error(socket, "The request is too large (at most 40 bytes).")
    await assert_normal_send_works(socket, alices_chat)  # 33 bytes
    await socket.disconnect()


@pytest.mark.asyncio
async def test_hostile_frames_on_the_admin_socket(admin_user: AbstractUser) -> None:
    socket = await open_socket(admin_user, "/ws/admin/models/")
    for frame, message in HOSTILE_FRAMES:
        await send_frame(socket, frame)
        if message == UNKNOWN:  # the admin socket ignores requests it does not know
            assert await socket.receive_nothing(timeout=0.05)
        else:
            await assert_one_error(socket, message)
    await socket.disconnect()


# ---- Generated frames: hypothesis, all on one socket ---------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(st.characters(codec=None, exclude_categories=()))  # lone surrogates included
    | st.sampled_from(["send", "stop", "\x00", "\ud800"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8) | st.sampled_from(["type", "content", "model", "\ud800"]), children, max_size=4),
    max_leaves=16,
)


def _is_request(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") in ("send", "stop")


@st.composite
def frames(draw: st.DrawFn) -> str | bytes:
    kind = draw(st.sampled_from(["json", "json", "text", "bytes", "deep", "huge-number"]))
    if kind == "json":
        # Real requests ("send"/"stop") are not hostile; everything else may be refused.
        value = draw(json_values.filter(lambda v: not _is_request(v)))
        return json.dumps(value, ensure_ascii=draw(st.booleans()))
    if kind == "text":
        return draw(st.text(st.characters(codec=None, exclude_categories=()), max_size=64))
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    if kind == "deep":
        depth = draw(st.sampled_from([33, 1_000, 50_000, 120_000]))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        return opener * depth + ("1" if opener != "[" else "") + closer * draw(st.sampled_from([0, depth]))
    return '{"type": "send", "content": ' + draw(st.sampled_from(["1e999", "-1e999", "9" * 4400, "NaN", "Infinity"])) + "}"


def expected_error(frame: str | bytes) -> str:
    """The one error a frame that is no request gets (webio.json's own tests pin the messages)."""
    if isinstance(frame, bytes):
        return BINARY
    try:
        value = parse_json(frame, max_bytes=524288)
    except BadJson as exc:
        return exc.message
    return UNKNOWN if isinstance(value, dict) else NOT_OBJECT


class LoopSocket:
    """A chat socket driven from synchronous code, so hypothesis can call one test body per
    example while every example goes to the same open socket."""

    def __init__(self, user: AbstractUser, conversation: Conversation) -> None:
        self.loop = asyncio.new_event_loop()
        self.conversation = conversation
        self.socket = self.loop.run_until_complete(open_socket(user, f"/ws/c/{conversation.id}/"))

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        self.run(self.socket.disconnect())
        self.loop.close()


@pytest.fixture
def loop_socket(alice: AbstractUser, alices_chat: Conversation) -> Iterator[LoopSocket]:
    socket = LoopSocket(alice, alices_chat)
    yield socket
    socket.close()


def test_generated_frames_each_get_one_error_on_one_socket(loop_socket: LoopSocket) -> None:
    sent: list[str | bytes] = []

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(frame=frames())
    def one_frame(frame: str | bytes) -> None:
        sent.append(frame)
        loop_socket.run(send_frame(loop_socket.socket, frame))
        loop_socket.run(assert_one_error(loop_socket.socket, expected_error(frame), quiet=0.01))

    one_frame()
    assert len(sent) >= 100
    assert Message.objects.filter(conversation=loop_socket.conversation).count() == 0
    loop_socket.run(assert_normal_send_works(loop_socket.socket, loop_socket.conversation))


# ---- SafeJsonConsumer alone ----------------------------------------------------------------


class _Echo(SafeJsonConsumer):
    async def connect(self) -> None:
        await self.accept()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if content.get("type") == "boom":
            raise RuntimeError("a bug in a handler")
        await self.send_json({"type": "echo", "content": content})


@pytest.mark.asyncio
async def test_only_json_objects_reach_receive_json_and_a_failing_handler_is_an_error_frame() -> None:
    socket = WebsocketCommunicator(_Echo.as_asgi(), "/ws/echo/")
    assert (await socket.connect())[0]
    await socket.send_to(text_data='{"type": "boom"}')
    await assert_one_error(socket, "The request failed on the server. Please try again.")
    await socket.send_to(text_data="[1]")
    await assert_one_error(socket, NOT_OBJECT)
    await socket.send_to(text_data='{"a": ["\\ud83d\\ude00"]}')
    assert json.loads(await socket.receive_from()) == {"type": "echo", "content": {"a": ["😀"]}}
    await socket.disconnect()


@pytest.mark.asyncio
async def test_a_frame_with_neither_text_nor_bytes_is_refused_like_a_binary_one() -> None:
    socket = WebsocketCommunicator(_Echo.as_asgi(), "/ws/echo/")
    assert (await socket.connect())[0]
    await socket.send_input({"type": "websocket.receive"})
    await assert_one_error(socket, BINARY)
    await socket.disconnect()


# ---- Unknown socket paths ------------------------------------------------------------------

UNKNOWN_PATHS = ["/ws/nope/", "/", "/ws/c/", "/ws/c/abc/extra/", "/ws/admin/models/more/", "/api/chat", "/ws/%F0%9F%98%80/"]


@pytest.mark.asyncio
@pytest.mark.parametrize("path", UNKNOWN_PATHS)
async def test_an_unknown_socket_path_is_accepted_then_closed_with_4404(path: str) -> None:
    socket = WebsocketCommunicator(application, path, headers=HEADERS)
    assert await socket.connect(timeout=5) == (True, None)
    assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 4404}
    await socket.disconnect()


@pytest.mark.asyncio
async def test_an_unknown_socket_path_from_a_foreign_origin_is_still_refused_at_the_handshake() -> None:
    socket = WebsocketCommunicator(application, "/ws/nope/", headers=[(b"origin", b"https://evil.example"), (b"host", b"127.0.0.1")])
    connected, code = await socket.connect(timeout=5)
    assert not connected and code == 1000  # channels' OriginValidator: a close before accepting


# ---- Over TCP through daphne ---------------------------------------------------------------


def _ws(server: LiveServer, path: str, **options: Any) -> Any:
    url = server.url.replace("http://", "ws://") + path
    return ws_connect(url, origin=Origin(server.url), proxy=None, compression=None, open_timeout=10, **options)


def _new_log(server: LiveServer, since: int) -> str:
    return server.logs()[since:]


@pytest.mark.parametrize("path", ["/ws/nope/", "/ws/c/abc/extra/", "/"])
def test_daphne_closes_an_unknown_socket_path_with_4404(live_platform: LiveServer, path: str) -> None:
    log_start = len(live_platform.logs())
    with _ws(live_platform, path) as socket:  # the handshake succeeds: a 101, not a 403 or 500
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4404
    assert "Traceback" not in _new_log(live_platform, log_start)


def test_daphne_hostile_frames_over_tcp_then_a_normal_message(live_platform: LiveServer, alice: AbstractUser, alices_chat: Conversation) -> None:
    log_start = len(live_platform.logs())
    browser = Client()
    browser.force_login(alice)
    cookie = browser.cookies["sessionid"].value
    # Raw lone surrogates cannot be written as UTF-8, so they never arrive over the wire.
    over_tcp = [(f, m) for f, m in HOSTILE_FRAMES if not (isinstance(f, str) and "\ud800" in f)]
    with _ws(live_platform, f"/ws/c/{alices_chat.id}/", additional_headers={"Cookie": f"sessionid={cookie}"}) as socket:
        assert json.loads(socket.recv(timeout=10)) == {"type": "access", "level": "owner"}
        for frame, message in over_tcp:
            socket.send(frame)
            assert json.loads(socket.recv(timeout=10)) == {"type": "error", "error": message}, _frame_id(frame)
        socket.send(json.dumps({"type": "send", "content": "hi"}))
        events: list[dict[str, Any]] = []
        while not events or events[-1]["type"] != "done":
            events.append(json.loads(socket.recv(timeout=60)))
    assert [e["type"] for e in events[:2]] == ["message", "message"]
    assert [e["message"]["role"] for e in events[:2]] == ["user", "assistant"]
    assert {e["type"] for e in events[2:-1]} <= {"delta"}
    assert events[-1]["status"] == "complete"
    assert "Traceback" not in _new_log(live_platform, log_start)
