"""Quotas in the browser chat, over a real WebSocket to the running platform (daphne): the
refusal is one error frame with the clear message, the socket stays open, nothing is stored."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.test import Client
from django.utils import timezone
from websockets.sync.client import connect as ws_connect
from websockets.typing import Origin

from accounts.models import UsageRecord
from chat.models import Message
from chat.services import conversation_create
from models_admin.models import LLMModel
from projects.services import project_create
from tests.conftest import LiveServer, make_user

from .helpers import group_quota, seed_usage, user_quota


def _socket(server: LiveServer, conversation_id: object, cookie: str) -> Any:
    url = server.url.replace("http://", "ws://") + f"/ws/c/{conversation_id}/"
    return ws_connect(url, origin=Origin(server.url), proxy=None, compression=None, open_timeout=10,
                      additional_headers={"Cookie": f"sessionid={cookie}"})


def _cookie(user: Any) -> str:
    browser = Client()
    browser.force_login(user)
    return browser.cookies["sessionid"].value


def test_a_used_up_daily_quota_is_an_error_frame_and_nothing_is_stored(
    live_platform: LiveServer, transactional_db: None, smollm: LLMModel
) -> None:
    hana = make_user("hana")
    group_quota("interns", [hana], tokens_per_day=2_000)
    seed_usage(hana, tokens=2_500, at=timezone.now() - timedelta(minutes=3))
    chat = conversation_create(owner=hana)
    with _socket(live_platform, chat.id, _cookie(hana)) as socket:
        assert json.loads(socket.recv(timeout=10)) == {"type": "access", "level": "owner"}
        socket.send(json.dumps({"type": "send", "content": "Hello?"}))
        refused = json.loads(socket.recv(timeout=10))
        assert refused["type"] == "error"
        assert refused["error"].startswith(
            "You have used your daily quota of 2,000 tokens (2,500 used). It resets on "
        ), refused
        assert "(in " in refused["error"]
        # The socket stays open: a second try gets the same answer, not a close.
        socket.send(json.dumps({"type": "send", "content": "Hello again?"}))
        assert json.loads(socket.recv(timeout=10))["type"] == "error"
    assert not Message.objects.filter(conversation_id=chat.id).exists()
    assert UsageRecord.objects.filter(user=hana).count() == 1  # only the seeded one


def test_with_quota_left_the_browser_answers_and_records_its_usage_with_the_project(
    live_platform: LiveServer, transactional_db: None, smollm: LLMModel
) -> None:
    LLMModel.objects.filter(pk=smollm.pk).update(max_tokens=8)  # a short answer is enough
    ivan = make_user("ivan")
    user_quota(ivan, tokens_per_day=100_000, requests_per_minute=5)
    project = project_create(creator=ivan, name="Launch")
    chat = conversation_create(owner=ivan, project=project)
    with _socket(live_platform, chat.id, _cookie(ivan)) as socket:
        assert json.loads(socket.recv(timeout=10))["type"] == "access"
        socket.send(json.dumps({"type": "send", "content": "Say hi."}))
        events: list[dict[str, Any]] = []
        while not events or events[-1]["type"] not in ("done", "error"):
            events.append(json.loads(socket.recv(timeout=60)))
    assert events[-1]["type"] == "done", events[-1]
    record = UsageRecord.objects.get(user=ivan)
    assert (record.source, record.project_id) == ("web", project.id)
