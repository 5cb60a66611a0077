"""An engine that accepts a request and then goes quiet: the first-token and between-token
timeouts end the answer with a clear error, the text so far is kept, and the next answer works.

A real engine cannot be made to hang on demand, so the upstream here is a scripted
OpenAI-compatible server on loopback (the one kind of stand-in the project allows, for
injecting a fault): model ``silent`` sends its headers and then nothing; ``stalls`` sends two
tokens and then nothing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser

from chat.models import Conversation, Message, MessageStatus, Role
from inference.engines import EngineError, vllm_engine
from inference.engines.base import Delta, Endpoint, GenerationOptions, ModelSpec
from models_admin.models import Backend, LLMModel
from tests.chat.helpers import connect, receive_until

RELEASE = threading.Event()  # ends every held request at teardown


class _QuietUpstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        if body.get("model") == "stalls":
            for piece in ("Once", " upon"):
                data = f"data: {json.dumps({'choices': [{'index': 0, 'delta': {'content': piece}}]})}\n\n".encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
        RELEASE.wait(30)  # then nothing: a hung engine


@pytest.fixture(scope="module")
def quiet_upstream() -> Iterator[str]:
    RELEASE.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _QuietUpstream)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    RELEASE.set()
    httpd.shutdown()


@pytest.fixture
def short_timeouts(settings: Any) -> None:
    settings.ENGINE_FIRST_TOKEN_TIMEOUT = 1.0
    settings.ENGINE_TOKEN_TIMEOUT = 0.5


def _spec(url: str, upstream: str) -> ModelSpec:
    return ModelSpec(key=f"{upstream}:latest", backend="vllm", upstream=upstream, context_length=2048, endpoints=(Endpoint(url),))


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("upstream", "texts", "error", "bound"),
    [
        ("silent", [], "did not start answering in 1 seconds", 1.0),
        ("stalls", ["Once", " upon"], "stopped answering for 0 seconds", 0.5),
    ],
)
async def test_a_quiet_engine_ends_the_stream_with_a_clear_error_on_time(
    quiet_upstream: str, short_timeouts: None, upstream: str, texts: list[str], error: str, bound: float
) -> None:
    received: list[str] = []
    started = time.monotonic()
    with pytest.raises(EngineError) as raised:
        async for event in vllm_engine().stream_chat(_spec(quiet_upstream, upstream), [{"role": "user", "content": "Hi"}],
                                                     GenerationOptions(max_tokens=16)):
            if isinstance(event, Delta):
                received.append(event.text)
    took = time.monotonic() - started
    assert received == texts
    assert error in raised.value.message
    assert bound <= took < bound + 2.0, f"the timeout fired after {took:.2f} s"


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_in_the_browser_the_answer_keeps_its_text_with_the_error_and_the_next_one_works(
    quiet_upstream: str, short_timeouts: None, alice: AbstractUser, smollm: LLMModel, settings: Any
) -> None:
    settings.VLLM_URL = quiet_upstream
    await LLMModel.objects.acreate(name="stalls", tag="latest", backend=Backend.VLLM, upstream_name="stalls",
                                   format="safetensors", context_length=4096, capabilities=["completion"])
    chat = await Conversation.objects.acreate(owner=alice, title="Quiet engine")
    socket, connected = await connect(alice, chat.id)
    assert connected
    await socket.send_json_to({"type": "send", "content": "Tell me a story.", "model": "stalls:latest"})
    done, _ = await receive_until(socket, "done", timeout=15)
    assert done["status"] == "error" and done["content"] == "Once upon"
    assert "stopped answering" in done["error"]
    answer = await Message.objects.aget(pk=done["id"])
    assert (answer.status, answer.content) == (MessageStatus.ERROR, "Once upon")

    await LLMModel.objects.filter(pk=smollm.pk).aupdate(max_tokens=8)
    await socket.send_json_to({"type": "send", "content": "Say hi.", "model": smollm.full_name})
    done, _ = await receive_until(socket, "done", timeout=60)
    assert done["status"] == "complete" and done["content"]
    assert await Message.objects.filter(conversation=chat, role=Role.ASSISTANT).acount() == 2
    await socket.disconnect()
