"""A client that reads a streamed API answer slowly is paced, one that stops reading is cut
off, and nobody else notices (``webio.backpressure.pace_http_responses``).

Everything is real: daphne on a loopback port with the embedded llama.cpp engine and the
bundled SmolLM2 model, over the test database; bob uses the official ``ollama`` client. The
slowness is real TCP backpressure, nothing mocked: alice's clients are raw sockets whose
receive buffer is set to the kernel's minimum before they connect, speaking HTTP/1.0 (no
chunked encoding: the body is the NDJSON lines themselves, ended by the server's close).

The limit is 4 KiB here, not the default 1 MiB, and the stall timeout 3 s, not 60 s: an
answer of SmolLM2's is a few dozen KiB at most, so 1 MiB would never be reached. The
mechanism is the same.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import ollama
import pytest
from django.contrib.auth.models import AbstractUser

from accounts.models import UsageOutcome, UsageRecord
from accounts.services import api_key_create
from models_admin.models import LLMModel
from tests.conftest import LiveServer, start_live_server
from tests.models_admin.helpers import wait_for

LIMIT = 4 * 1024
STALL_SECONDS = 3
PROMPT = "Write a very long, detailed story about a lighthouse keeper, with many chapters."
PACED_LINE = re.compile(
    r"webio\.backpressure: pacing the response to \S+ (?P<path>\S+): (?P<unsent>\d+) bytes unsent, "
    r"over HTTP_MAX_BACKLOG_BYTES=(?P<limit>\d+)$",
    re.MULTILINE,
)
CUT_LINE = re.compile(
    r"webio\.backpressure: cutting off the response to \S+ (?P<path>\S+): it took nothing for (?P<seconds>\d+) s "
    r"\(HTTP_STALL_SECONDS\), (?P<unsent>\d+) bytes unsent \(at most (?P<peak>\d+)\)$",
    re.MULTILINE,
)


@pytest.fixture(scope="module")
def server(django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"HTTP_MAX_BACKLOG_BYTES": str(LIMIT), "HTTP_STALL_SECONDS": str(STALL_SECONDS)}
    with start_live_server(django_db_blocker, tmp_path_factory.mktemp("slow-http"), env) as live:
        yield live


class RawStream:
    """``POST /api/generate`` with ``stream: true`` on a socket that has the smallest receive
    buffer the kernel allows, read by the test at its own pace."""

    def __init__(self, server: LiveServer, secret: str, *, tokens: int) -> None:
        port = int(server.url.rsplit(":", 1)[1])
        body = json.dumps({"model": "smollm2:135m", "prompt": PROMPT, "stream": True,
                           "options": {"num_predict": tokens, "temperature": 0}}).encode()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # before connecting: the window
        self.sock.settimeout(60)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(
            f"POST /api/generate HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {secret}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        )
        self.received = b""
        self.ended_with = ""

    def read_slowly(self, *, size: int, every: float) -> None:
        """``size`` bytes every ``every`` seconds, until the server ends the response."""
        try:
            while chunk := self.sock.recv(size):
                self.received += chunk
                time.sleep(every)
            self.ended_with = "end of stream"
        except OSError as exc:
            self.ended_with = type(exc).__name__
        finally:
            self.sock.close()

    def lines(self) -> list[dict[str, Any]]:
        head, _, body = self.received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.0 200 "), head[:200]
        complete = body[: body.rfind(b"\n") + 1]  # a cut-off stream may end mid-line
        return [json.loads(line) for line in complete.splitlines()]


def _answer_from_bob(server: LiveServer, secret: str) -> tuple[float, float, str]:
    """(seconds to the first token, longest gap between tokens, the answer)."""
    client = ollama.Client(host=server.url, headers={"Authorization": f"Bearer {secret}"}, timeout=120)
    asked = time.monotonic()
    arrivals, text = [], ""
    for part in client.generate(model="smollm2:135m", prompt="Say hello in one short sentence.", stream=True,
                                options={"num_predict": 24}):
        arrivals.append(time.monotonic())
        text += part.response or ""
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:])]
    return arrivals[0] - asked, max(gaps, default=0.0), text


@pytest.mark.django_db(transaction=True)
def test_a_client_that_stops_reading_is_cut_off_and_its_generation_ends_while_bob_streams_on_time(
    server: LiveServer, smollm: LLMModel, alice: AbstractUser, bob: AbstractUser
) -> None:
    _key, alices_secret = api_key_create(user=alice, name="stalled script")
    _key, bobs_secret = api_key_create(user=bob, name="chatbox")
    stalled = RawStream(server, alices_secret, tokens=400)

    # Alice reads nothing. Bob's answer, asked meanwhile, streams as usual.
    first_token, longest_gap, bobs_answer = _answer_from_bob(server, bobs_secret)
    assert bobs_answer.strip() and first_token < 10 and longest_gap < 5, (first_token, longest_gap)

    # Once alice's client is LIMIT behind, her response waits; after STALL_SECONDS without her
    # taking a byte, the connection is aborted. At most the limit plus one chunk was held.
    cut = wait_for(lambda: CUT_LINE.search(server.logs()), timeout=90, interval=0.2,
                   message="the stalled response to be cut off")
    assert (cut["path"], int(cut["seconds"])) == ("/api/generate", STALL_SECONDS)
    assert LIMIT < int(cut["peak"]) <= LIMIT + 512, cut.group(0)
    stalled.read_slowly(size=65536, every=0)
    assert stalled.ended_with in ("ConnectionResetError", "end of stream"), stalled.ended_with
    lines = stalled.lines()
    assert lines and not any(line["done"] for line in lines), lines[-1:]

    # Django heard of the disconnect and the stream was cancelled, closing the engine request
    # (``api.generation.guarded``): the usage record says the client went away.
    record = wait_for(lambda: UsageRecord.objects.filter(user_id=alice.pk).first(), timeout=30, interval=0.2,
                      message="alice's generation to be recorded as ended")
    assert UsageRecord.objects.filter(user_id=alice.pk).count() == 1
    assert record.outcome == UsageOutcome.CLIENT_GONE and record.completion_tokens > 0, record.outcome


@pytest.mark.django_db(transaction=True)
def test_a_slow_reader_is_paced_not_cut_off_and_gets_the_whole_answer(
    server: LiveServer, smollm: LLMModel, alice: AbstractUser
) -> None:
    _key, secret = api_key_create(user=alice, name="slow script")
    before = len(PACED_LINE.findall(server.logs()))
    slow = RawStream(server, secret, tokens=120)
    reader = threading.Thread(target=slow.read_slowly, kwargs={"size": 256, "every": 0.2}, daemon=True)
    reader.start()
    reader.join(timeout=120)
    assert not reader.is_alive() and slow.ended_with == "end of stream", slow.ended_with

    # It fell behind (the response waited for it), but it kept taking bytes, so it was never
    # cut off, and it got the answer to its last line.
    logs = server.logs()
    paced = [found for found in PACED_LINE.finditer(logs)][before:]
    assert [found["path"] for found in paced] == ["/api/generate"], logs[-3000:]
    assert int(paced[0]["limit"]) == LIMIT < int(paced[0]["unsent"]) <= LIMIT + 512
    assert not CUT_LINE.search(logs[logs.find(paced[0].group(0)):]), logs[-3000:]
    lines = slow.lines()
    assert lines[-1]["done"] is True and lines[-1]["eval_count"] > 0
    assert "".join(line["response"] for line in lines).strip()
    record = UsageRecord.objects.get(user_id=alice.pk)
    assert record.outcome == UsageOutcome.COMPLETE and record.completion_tokens == lines[-1]["eval_count"]


async def test_a_client_that_keeps_up_is_measured_once_per_limit_written_not_per_chunk(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """The token loop pays no system call: the backlog cannot grow by more than was written,
    so it is measured only once the writes since the last measurement could pass the limit."""
    import platform.asgi  # noqa: F401  (installs the pacing on daphne's Server, as in production)

    from daphne.http_protocol import WebRequest
    from daphne.server import Server

    from webio import backpressure

    measured: list[object] = []

    def unsent_bytes(transport: object) -> tuple[int, int]:
        measured.append(transport)
        return (0, 0)  # a client that keeps up: nothing left unsent

    monkeypatch.setattr(backpressure, "unsent_bytes", unsent_bytes)
    request = WebRequest.__new__(WebRequest)  # the protocol object only: daphne's own reply ignores it
    request.channel = type("Channel", (), {"transport": object()})()
    daphne = type("Daphne", (), {"connections": {}})()
    limit = settings.HTTP_MAX_BACKLOG_BYTES
    chunk = b"x" * 100
    for _ in range(limit // len(chunk)):
        await Server.handle_reply(daphne, request, {"type": "http.response.body", "body": chunk, "more_body": True})
    assert measured == []
    for _ in range(3 * (len(chunk) + 1)):  # a little over the limit written: measured once, room again
        await Server.handle_reply(daphne, request, {"type": "http.response.body", "body": chunk, "more_body": True})
    assert len(measured) == 1
