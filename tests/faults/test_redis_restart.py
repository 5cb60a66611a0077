"""Redis restarted (killed, everything in it gone) during ten live answers and a running pull.

All real: a web node (daphne, embedded engine), a Celery worker, HAProxy, PostgreSQL, and a
redis-server of this test's own (``RedisServer``), which is killed and started again empty.
What was published while it was down is lost (pub/sub keeps nothing); the platform must
notice, resync every open tab from the database and the running jobs, finish every answer
with its whole text, and let the worker reconnect and finish the pull.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from accounts.services import api_key_create
from chat.models import Message, MessageStatus
from chat.services import conversation_create
from models_admin.models import LLMModel, Pull
from platform.cluster import Cluster
from tests.conftest import _test_database_url, make_user
from tests.models_admin.helpers import SMOLLM_BYTES, ModelServer, start_model_server
from tests.scaleout.conftest import SMOL_FILE, receive, session_cookie, socket

from .services import RedisServer, require_postgres_and_redis

pytestmark = pytest.mark.django_db(transaction=True)

STREAMS = int(os.environ.get("FAULT_STREAMS", "10"))


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    require_postgres_and_redis()  # before looking for redis-server: SQLite mode has none
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def slow_hub() -> Iterator[ModelServer]:
    # Throttled so that the pull is still downloading when Redis goes away.
    server = start_model_server(bytes_per_second=3_000_000)
    server.files[SMOL_FILE] = SMOLLM_BYTES
    yield server
    server.stop()


@pytest.fixture
def on_own_redis(django_db_blocker: Any, redis_server: RedisServer, slow_hub: ModelServer, tmp_path: Path) -> Iterator[Cluster]:
    require_postgres_and_redis()
    with django_db_blocker.unblock():
        database_url = _test_database_url()
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_server.url,
        "CELERY_QUEUE": f"test-redis-{uuid.uuid4().hex[:8]}",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CHAT_AUTO_TITLE": "false",
        "MODELS_DIR": str(tmp_path / "models"),
        "PULL_ALLOW_HOSTS": slow_hub.host,
        "HF_ENDPOINT": slow_hub.origin,
        "MAX_CONCURRENT_GENERATIONS_PER_USER": str(STREAMS + 2),
        "LAYER_PING_SECONDS": "0.5",
    }
    cluster = Cluster(env=env, log_dir=tmp_path / "cluster", nodes_count=1)
    cluster.start()
    yield cluster
    cluster.stop()


class Tab:
    """One open chat, read on a thread of its own until its answer is done."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.frames: list[dict[str, Any]] = []
        self.answer_id: int | None = None
        self.finished = threading.Event()
        self.streaming = threading.Event()

    def read(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                frame = receive(self.connection, timeout=max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                return
            self.frames.append(frame)
            if frame["type"] == "message" and frame["message"]["role"] == "assistant":
                self.answer_id = frame["message"]["id"]
            elif frame["type"] in ("delta", "snapshot") and frame["id"] == self.answer_id:
                self.streaming.set()
            elif frame["type"] == "done" and frame["id"] == self.answer_id:
                self.finished.set()
                return

    def read_until_resync(self, timeout: float = 15) -> None:
        """A tab whose answer ended before (or just after) the outage stopped reading at
        "done"; the resync frame every open socket gets comes later, so read on for it."""
        deadline = time.monotonic() + timeout
        while "resync" not in self.kinds() and time.monotonic() < deadline:
            try:
                self.frames.append(receive(self.connection, timeout=max(0.1, deadline - time.monotonic())))
            except TimeoutError:
                return

    def kinds(self) -> set[str]:
        return {frame["type"] for frame in self.frames}


def test_redis_restarted_during_ten_streams_and_a_pull(
    on_own_redis: Cluster, redis_server: RedisServer, slow_hub: ModelServer, smollm: LLMModel
) -> None:
    LLMModel.objects.filter(pk=smollm.pk).update(max_tokens=80)
    node = on_own_redis.nodes[0]
    alice, olga = make_user("alice"), make_user("olga", staff=True)
    alice_cookie, olga_cookie = session_cookie(alice), session_cookie(olga)
    _key, olga_secret = api_key_create(user=olga, name="ops")
    chats = [conversation_create(owner=alice) for _ in range(STREAMS)]
    with ExitStack() as stack, ThreadPoolExecutor(STREAMS + 2) as pool:
        tabs = [Tab(stack.enter_context(socket(node, f"/ws/c/{chat.id}/", alice_cookie))) for chat in chats]
        admin = stack.enter_context(socket(node, "/ws/admin/models/", olga_cookie))
        for number, tab in enumerate(tabs):
            assert receive(tab.connection) == {"type": "access", "level": "owner"}
            tab.connection.send(json.dumps({"type": "send", "content": f"Write about lighthouse number {number}."}))
        readers = [pool.submit(tab.read) for tab in tabs]
        admin_events: list[dict[str, Any]] = []

        def watch_pulls() -> None:  # read all along: an unread socket stops answering pings
            while not any(e.get("type") == "pull" and e["pull"]["status"] == "succeeded" for e in admin_events):
                admin_events.append(receive(admin, timeout=240))

        admin_reader = pool.submit(watch_pulls)
        pulling = pool.submit(
            httpx.post, node.url + "/api/pull", timeout=300, headers={"Authorization": f"Bearer {olga_secret}"},
            json={"model": slow_hub.url(SMOL_FILE), "stream": False},
        )
        deadline = time.monotonic() + 120
        # The engine runs a few answers at once and queues the rest: some stream, some wait.
        while not (sum(tab.streaming.is_set() for tab in tabs) >= 2 and Pull.objects.filter(completed_bytes__gt=0, status="running").exists()):
            assert time.monotonic() < deadline, "the answers and the pull did not all start"
            time.sleep(0.2)
        running_at_kill = sum(not tab.finished.is_set() for tab in tabs)

        redis_server.kill()
        time.sleep(3)
        redis_server.start()

        for reader in readers:
            reader.result(timeout=240)
        unfinished = [
            (tab.answer_id, [f["type"] for f in tab.frames][-8:], Message.objects.get(pk=tab.answer_id).status)
            for tab in tabs if not tab.finished.is_set()
        ]
        assert not unfinished, unfinished
        response = pulling.result(timeout=240)
        admin_reader.result(timeout=120)

        assert running_at_kill >= 1, "every answer ended before Redis went away: nothing was proved"
        for tab in tabs:
            done = next(f for f in reversed(tab.frames) if f["type"] == "done" and f["id"] == tab.answer_id)
            answer = Message.objects.get(pk=tab.answer_id)
            assert done["status"] == "complete" and answer.status == MessageStatus.COMPLETE, done
            assert answer.content == done["content"] and answer.content.strip()
            snapshots = [f["text"] for f in tab.frames if f["type"] == "snapshot" and f["id"] == tab.answer_id]
            assert all(answer.content.startswith(text) for text in snapshots)
            tab.read_until_resync()
            assert "resync" in tab.kinds(), "the tab was not told to resync after Redis came back"
        assert response.status_code == 200 and response.json() == {"status": "success"}, response.text
        assert Pull.objects.get().status == "succeeded"
        assert not Message.objects.filter(status=MessageStatus.STREAMING).exists()

        # The worker reconnected to the new Redis (Celery logs each connection).
        worker_log = on_own_redis.children[1].logs()
        assert worker_log.count("Connected to redis://") >= 2, worker_log[-3000:]

        # And the chat goes on, on the same socket.
        LLMModel.objects.filter(pk=smollm.pk).update(max_tokens=16)
        tab = tabs[0]
        tab.connection.send(json.dumps({"type": "send", "content": "Say hello."}))
        tab.finished.clear()
        tab.answer_id = None  # the resync's own "done" for the old answer may still be queued
        tab.read(timeout=90)
        assert tab.finished.is_set() and tab.frames[-1]["status"] == "complete"
