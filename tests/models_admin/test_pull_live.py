"""Pulls end to end with a real Celery worker process: progress reaches every admin's socket
(through Redis, or in embedded mode through the consumer's polling of the pull rows), and the
pulled model answers in a chat."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AbstractUser

from chat.services import conversation_create
from models_admin.models import LLMModel, PullStatus
from models_admin.services.pulls import pull_start
from tests.chat.helpers import connect as chat_socket
from tests.chat.helpers import receive_until
from tests.conftest import _test_database_url, make_user

from .helpers import (
    SMOLLM_BYTES,
    SMOLLM_SHA256,
    ModelServer,
    Worker,
    admin_socket,
    start_model_server,
    start_worker,
    task_queue,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

SMOL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass
class LiveWorker:
    worker: Worker
    queue: str
    models_dir: Path


@pytest.fixture(scope="module")
def hub() -> Iterator[ModelServer]:
    # Throttled so a pull takes a couple of seconds and reports progress on the way.
    server = start_model_server(bytes_per_second=40_000_000)
    server.files[SMOL_FILE] = SMOLLM_BYTES
    server.repos["acme/SmolLM2-GGUF"] = ["README.md", SMOL_FILE]
    yield server
    server.stop()


@pytest.fixture(scope="module")
def live_worker(
    django_db_setup: None, django_db_blocker: Any, hub: ModelServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveWorker]:
    models_dir = tmp_path_factory.mktemp("models")
    queue = f"test-pulls-{uuid.uuid4().hex[:8]}"  # nobody else's worker takes these tasks
    with django_db_blocker.unblock():
        database_url = _test_database_url()
    worker = start_worker(
        database_url=database_url,
        queue=queue,
        log=tmp_path_factory.mktemp("worker") / "worker.log",
        env={"MODELS_DIR": str(models_dir), "PULL_ALLOW_HOSTS": hub.host, "HF_ENDPOINT": hub.origin},
    )
    yield LiveWorker(worker, queue, models_dir)
    worker.stop()


@pytest.fixture
def live(settings: Any, live_worker: LiveWorker, hub: ModelServer) -> Iterator[LiveWorker]:
    settings.MODELS_DIR = live_worker.models_dir
    settings.PULL_ALLOW_HOSTS = [hub.host]
    settings.HF_ENDPOINT = hub.origin
    settings.DEFAULT_MAX_TOKENS = 24
    with task_queue(live_worker.queue):
        yield live_worker


async def pull_events(socket: WebsocketCommunicator, pull_id: int, *, timeout: float = 90) -> list[dict[str, Any]]:
    """This pull's events from the admin socket, up to and including a finished one."""
    events: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        event = json.loads(await socket.receive_from(timeout=max(remaining, 0.01)))
        if event["type"] == "pull" and event["pull"]["id"] == pull_id:
            events.append(event["pull"])
            if event["pull"]["status"] in ("succeeded", "failed", "cancelled"):
                return events


async def chat_answer(user: AbstractUser, model_name: str) -> dict[str, Any]:
    conversation = await database_sync_to_async(conversation_create)(owner=user, model_name=model_name)
    socket, connected = await chat_socket(user, conversation.id)
    assert connected
    await socket.send_json_to({"type": "send", "content": "Say hello.", "model": model_name})
    done, _events = await receive_until(socket, "done", timeout=120)
    await socket.disconnect()
    return done


def assert_progress_was_live(events: list[dict[str, Any]]) -> None:
    running = [e for e in events if e["status"] == "running" and e["total"] and 0 < e["completed"] < e["total"]]
    assert running, f"no progress before the end: {events}"
    assert any(e["speed_bps"] > 0 for e in running)
    assert all(e["total"] == len(SMOLLM_BYTES) for e in running)
    completed = [e["completed"] for e in running]
    assert completed == sorted(completed)
    assert events[-1]["status"] == "succeeded", events[-1]


async def test_url_pull_shows_live_progress_to_every_admin_and_the_model_chats(
    live: LiveWorker, hub: ModelServer, admin_user: AbstractUser, alice: AbstractUser
) -> None:
    other_admin = await database_sync_to_async(make_user)("ops", staff=True)
    first, ok_first = await admin_socket(admin_user)
    second, ok_second = await admin_socket(other_admin)
    assert ok_first and ok_second

    pull = await database_sync_to_async(pull_start)(actor=admin_user, name=hub.url(SMOL_FILE), model_name="smol:pulled")
    events = await pull_events(first, pull.id)
    seen_by_second = await pull_events(second, pull.id)

    assert_progress_was_live(events)
    assert seen_by_second[-1]["status"] == "succeeded"
    model = await LLMModel.objects.aget(name="smol", tag="pulled")
    assert model.digest == f"sha256:{SMOLLM_SHA256}" and model.status == "ready"
    assert Path(model.file_path) == live.models_dir / "blobs" / f"sha256-{SMOLLM_SHA256}"

    # An admin who opens the page later gets the finished pull at once.
    late, _ok = await admin_socket(admin_user)
    snapshot = json.loads(await late.receive_from(timeout=5))
    assert snapshot["pull"]["id"] == pull.id and snapshot["pull"]["status"] == "succeeded"

    done = await chat_answer(alice, "smol:pulled")
    assert done["status"] == "complete", done
    assert done["content"].strip()
    for socket in (first, second, late):
        await socket.disconnect()


async def test_hf_pull_through_hf_endpoint_shows_progress_and_the_model_chats(
    live: LiveWorker, hub: ModelServer, admin_user: AbstractUser, alice: AbstractUser
) -> None:
    socket, connected = await admin_socket(admin_user)
    assert connected
    pull = await database_sync_to_async(pull_start)(actor=admin_user, name="hf.co/acme/SmolLM2-GGUF:Q4_1")
    events = await pull_events(socket, pull.id)

    assert_progress_was_live(events)
    model = await LLMModel.objects.aget(name="hf.co/acme/smollm2-gguf", tag="q4_1")
    assert model.source == "hf.co/acme/SmolLM2-GGUF:Q4_1"
    done = await chat_answer(alice, "hf.co/acme/SmolLM2-GGUF:Q4_1")
    assert done["status"] == "complete" and done["content"].strip()
    await socket.disconnect()


async def test_a_failed_pull_reaches_the_socket_with_its_reason(
    live: LiveWorker, hub: ModelServer, admin_user: AbstractUser
) -> None:
    hub.files["bad.gguf"] = b"not a model" * 1000
    socket, _connected = await admin_socket(admin_user)
    pull = await database_sync_to_async(pull_start)(actor=admin_user, name=hub.url("bad.gguf"))
    events = await pull_events(socket, pull.id)
    assert events[-1]["status"] == PullStatus.FAILED
    assert "Not a GGUF file" in events[-1]["error"]
    await socket.disconnect()
