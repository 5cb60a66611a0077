"""PostgreSQL unreachable for 30 seconds, and back.

Everything is real (daphne, the embedded engine, PostgreSQL, Redis) except the outage
itself: the platform reaches the database through ``TcpProxy``, which drops every connection
and refuses new ones for the length of the outage, as a stopped server would (the machine's
PostgreSQL serves the rest of the test run, so it is not stopped itself).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import connection
from websockets.exceptions import ConnectionClosed

from accounts.services import api_key_create
from chat.models import Message, MessageStatus
from chat.services import conversation_create
from models_admin.models import LLMModel
from tests.conftest import LiveServer, make_user, start_live_server
from tests.scaleout.conftest import receive, session_cookie, socket

from .services import TcpProxy, require_postgres_and_redis

pytestmark = pytest.mark.django_db(transaction=True)

OUTAGE_SECONDS = 30


@pytest.fixture
def behind_proxy(django_db_blocker: Any, tmp_path: Path) -> Iterator[tuple[LiveServer, TcpProxy]]:
    require_postgres_and_redis()
    db = connection.settings_dict
    proxy = TcpProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
    proxy.start()
    env = {
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@127.0.0.1:{proxy.port}/{db['NAME']}",
        # A request waits this long for a connection before its 503 (the default is 5 s).
        "DB_POOL_TIMEOUT": "2",
    }
    try:
        with start_live_server(django_db_blocker, tmp_path, extra_env=env) as server:
            yield server, proxy
    finally:
        proxy.stop()


def _until(tab: Any, seen: list[dict[str, Any]], *kinds: str, timeout: float = 90) -> dict[str, Any]:
    """Frames into ``seen`` up to the first of ``kinds``; returns that one."""
    while True:
        frame = receive(tab, timeout)
        seen.append(frame)
        if frame["type"] in kinds:
            return frame


def test_thirty_seconds_without_the_database(behind_proxy: tuple[LiveServer, TcpProxy], smollm: LLMModel) -> None:
    server, proxy = behind_proxy
    LLMModel.objects.filter(pk=smollm.pk).update(max_tokens=200)
    alice = make_user("alice")
    cookie = session_cookie(alice)
    _key, secret = api_key_create(user=alice, name="alices-laptop")
    auth = {"Authorization": f"Bearer {secret}"}
    chat = conversation_create(owner=alice)
    path = f"/ws/c/{chat.id}/"
    frames: list[dict[str, Any]] = []
    with socket(server, path, cookie) as tab:
        assert receive(tab) == {"type": "access", "level": "owner"}
        tab.send(json.dumps({"type": "send", "content": "Tell me a story about a lighthouse keeper."}))
        answer_id = _until(tab, frames, "delta")["id"]

        proxy.cut()
        back_at = time.monotonic() + OUTAGE_SECONDS

        page = httpx.get(server.url + "/settings/keys/", cookies={"sessionid": cookie}, timeout=20)
        assert page.status_code == 503, page.text[:500]
        assert page.headers["Retry-After"] == "5"
        assert "The service is briefly unavailable" in page.text
        assert "Traceback" not in page.text and "OperationalError" not in page.text

        tags = httpx.get(server.url + "/api/tags", headers=auth, timeout=20)
        assert tags.status_code == 503
        assert tags.json() == {
            "error": "the service is temporarily unavailable (its database cannot be reached); try again shortly"
        }
        completion = httpx.post(
            server.url + "/v1/chat/completions", headers=auth, timeout=20,
            json={"model": smollm.name, "messages": [{"role": "user", "content": "hi"}]},
        )
        assert completion.status_code == 503 and completion.headers["Retry-After"] == "5"
        assert completion.json()["error"]["code"] == "service_unavailable"

        # A tab opening now is closed with 4503 "try again later" (the browser reconnects).
        with pytest.raises(ConnectionClosed) as closed, socket(server, path, cookie) as late:
            late.recv(timeout=20)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4503

        # The open tab stays open; a message sent now is answered with a sentence, not stored.
        tab.send(json.dumps({"type": "send", "content": "Are you there?"}))
        refusal = _until(tab, frames, "error", timeout=30)
        assert refusal["error"] == "The server cannot reach its database at the moment. Please try again in a few seconds."

        time.sleep(max(0.0, back_at - time.monotonic()))
        proxy.restore()

        # The answer that finished during the outage: its one write waited for the database.
        done = frames[-1] if frames[-1]["type"] == "done" else _until(tab, frames, "done", timeout=90)
        assert done["id"] == answer_id and done["status"] == "complete", done
        streamed = "".join(f["text"] for f in frames if f["type"] == "delta" and f["id"] == answer_id)
        answer = Message.objects.get(pk=answer_id)
        assert answer.status == MessageStatus.COMPLETE
        assert answer.content == done["content"] == streamed and streamed.strip()
        assert "retrying the answer's write" in server.logs(), "the answer ended before the outage: nothing was proved"
        assert not Message.objects.filter(content="Are you there?").exists()

        # Recovered, with no request failing on a connection the outage killed.
        for _ in range(10):
            page = httpx.get(server.url + "/settings/keys/", cookies={"sessionid": cookie}, timeout=20)
            assert page.status_code == 200 and "alices-laptop" in page.text
            assert httpx.get(server.url + "/api/tags", headers=auth, timeout=20).status_code == 200
        LLMModel.objects.filter(pk=smollm.pk).update(max_tokens=16)
        tab.send(json.dumps({"type": "send", "content": "Say hello."}))
        after = _until(tab, frames, "done", timeout=90)
        assert after["status"] == "complete" and after["id"] != answer_id
    assert not Message.objects.filter(conversation=chat, status=MessageStatus.STREAMING).exists()
