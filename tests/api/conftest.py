"""Fixtures for the API conformance suite: keys for the personas, the official clients
pointed at a live server, models with access rules, and a second server wired to a scripted
upstream for fault injection."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import ollama
import openai
import pytest
from django.contrib.auth.models import AbstractUser

from accounts.services import api_key_create
from models_admin.models import Access, Backend, LLMModel
from models_admin.services.registry import bundled_model_path
from tests.conftest import LiveServer, start_live_server


def make_key(user: AbstractUser, name: str = "tests") -> str:
    return api_key_create(user=user, name=name)[1]


@pytest.fixture
def alice_key(alice: AbstractUser) -> str:
    return make_key(alice)


@pytest.fixture
def bob_key(bob: AbstractUser) -> str:
    return make_key(bob)


@pytest.fixture
def admin_key(admin_user: AbstractUser) -> str:
    return make_key(admin_user)


@pytest.fixture
def server(live_platform: LiveServer, transactional_db: None) -> str:
    return live_platform.url


@pytest.fixture
def ollama_client(server: str) -> Callable[..., ollama.Client]:
    def make(key: str | None, *, host: str | None = None) -> ollama.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return ollama.Client(host=host or server, headers=headers, timeout=120)

    return make


@pytest.fixture
def openai_client(server: str) -> Callable[..., openai.OpenAI]:
    def make(key: str, *, base_url: str | None = None) -> openai.OpenAI:
        # No retries: a test must see the first answer, and 5xx retries would hide slowness.
        return openai.OpenAI(base_url=base_url or f"{server}/v1", api_key=key, max_retries=0, timeout=120)

    return make


def _copy_of(model: LLMModel, **changes: Any) -> LLMModel:
    fields = {
        f.name: getattr(model, f.name)
        for f in LLMModel._meta.concrete_fields
        if f.name not in ("id", "created_at", "modified_at", "is_default")
    }
    fields.update(changes)
    return LLMModel.objects.create(**fields)


@pytest.fixture
def restricted_model(smollm: LLMModel, alice: AbstractUser) -> LLMModel:
    """The bundled model again, as ``alices-model:latest``, that only alice may use."""
    model = _copy_of(smollm, name="alices-model", tag="latest", access=Access.RESTRICTED)
    model.allowed_users.add(alice)
    return model


@pytest.fixture
def embedding_model(smollm: LLMModel) -> LLMModel:
    """The bundled GGUF registered as an embedding model, so the engine serves it with
    embeddings enabled (a second llama.cpp instance of the same file)."""
    return _copy_of(smollm, name="smollm2-embed", tag="latest", capabilities=["embedding"])


# ---- A second server whose vLLM backend is a scripted, faulty upstream -----------------------

CHAT_PIECES = ["Hello", " from", " upstream"]


class _FaultyUpstream(BaseHTTPRequestHandler):
    """An OpenAI-compatible server that streams a few chunks and then fails mid-answer.

    For the upstream model ``flaky`` it reports the failure the way vLLM does when its engine
    dies under a request (an ``error`` event in the stream); for ``flaky-cut`` it drops the
    connection without finishing the chunked body, as a crashed server does.
    """

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._json({"object": "list", "data": [{"id": "flaky", "object": "model"}, {"id": "flaky-cut", "object": "model"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        chat = self.path.endswith("/chat/completions")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in CHAT_PIECES:
            choice = {"index": 0, "delta": {"content": piece}} if chat else {"index": 0, "text": piece}
            self._chunk(f"data: {json.dumps({'choices': [choice]})}\n\n".encode())
            time.sleep(0.05)
        if body.get("model") == "flaky-cut":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._chunk(b'data: {"error": {"message": "EngineCore encountered an issue", "type": "InternalServerError", "code": 500}}\n\n')
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _json(self, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="session")
def faulty_upstream() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _FaultyUpstream)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


CORS_ORIGIN = "https://web.chatboxai.app"
IMPORTABLE_FILE = "tiny-import.gguf"
SMALL_BODY_LIMIT = 64 * 1024


@pytest.fixture(scope="session")
def configured_platform(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory, faulty_upstream: str
) -> Iterator[LiveServer]:
    """A second live server (same test database) configured as an operator would: a vLLM
    backend (here the faulty upstream), a CORS origin, a small request-size limit, an import
    folder holding a GGUF file to pull."""
    home = tmp_path_factory.mktemp("configured")
    (home / "import").mkdir()
    shutil.copyfile(bundled_model_path(), home / "import" / IMPORTABLE_FILE)
    extra_env = {
        "VLLM_URL": faulty_upstream,
        "CORS_ALLOWED_ORIGINS": CORS_ORIGIN,
        "MAX_REQUEST_BYTES": str(SMALL_BODY_LIMIT),
        # Pulls run inside the request (no Celery worker in tests), from a private import folder.
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "MODEL_IMPORT_DIR": str(home / "import"),
        "MODELS_DIR": str(home / "models"),
    }
    with start_live_server(django_db_blocker, home, extra_env) as server:
        yield server


@pytest.fixture
def configured_server(configured_platform: LiveServer, transactional_db: None) -> str:
    return configured_platform.url


def _vllm_model(name: str) -> LLMModel:
    return LLMModel.objects.create(
        name=name, tag="latest", backend=Backend.VLLM, upstream_name=name, format="safetensors",
        context_length=4096, capabilities=["completion"],
    )


@pytest.fixture
def flaky_model(transactional_db: None) -> LLMModel:
    """A vLLM-backend model whose upstream fails mid-answer (only the configured server has it)."""
    return _vllm_model("flaky")


@pytest.fixture
def cut_model(transactional_db: None) -> LLMModel:
    """A vLLM-backend model whose upstream drops the connection mid-answer."""
    return _vllm_model("flaky-cut")
