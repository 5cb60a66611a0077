"""Two web nodes behind HAProxy act as one platform: what one node starts, the other shows,
stops or refuses at once. Each test talks to the nodes directly (``cluster.nodes``) where it
matters which node does what, and through HAProxy (``cluster.url``) where it does not."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from accounts.services import api_key_create
from chat.models import Message, MessageStatus
from chat.services import conversation_create
from models_admin.models import LLMModel
from platform.cluster import Cluster
from tests.conftest import make_user
from tests.models_admin.helpers import SMOLLM_SHA256, ModelServer

from .conftest import SMOL_FILE, receive, receive_until, session_cookie, socket

pytestmark = pytest.mark.django_db(transaction=True)


def test_haproxy_spreads_requests_over_both_nodes_without_sticky_sessions(cluster: Cluster, smollm: LLMModel) -> None:
    alice = make_user("alice")
    api_key_create(user=alice, name="alices-laptop")
    cookie = session_cookie(alice)
    served = []
    for _ in range(6):
        response = httpx.get(cluster.url + "/settings/keys/", cookies={"sessionid": cookie}, timeout=10)
        assert response.status_code == 200
        assert "alices-laptop" in response.text  # her session and her keys, whichever node answered
        served.append(response.headers["x-served-by"])
    assert set(served) == {"node-a", "node-b"}


def test_a_chat_open_on_node_a_receives_the_answer_started_on_node_b(cluster: Cluster, smollm: LLMModel) -> None:
    LLMModel.objects.filter(pk=smollm.pk).update(max_tokens=16)
    node_a, node_b = cluster.nodes
    alice = make_user("alice")
    cookie = session_cookie(alice)
    chat = conversation_create(owner=alice)
    path = f"/ws/c/{chat.id}/"
    with socket(node_a, path, cookie) as on_a, socket(node_b, path, cookie) as on_b:
        assert receive(on_a) == {"type": "access", "level": "owner"}
        assert receive(on_b) == {"type": "access", "level": "owner"}
        on_b.send(json.dumps({"type": "send", "content": "Say hello."}))
        seen_on_a = receive_until(on_a, "done", "error")
        seen_on_b = receive_until(on_b, "done", "error")
    done = seen_on_a[-1]
    assert done["type"] == "done" and done["status"] == "complete", done
    assert seen_on_b[-1] == done  # the same final frame on both nodes
    messages = [e["message"] for e in seen_on_a if e["type"] == "message"]
    assert [(m["role"], m["content"]) for m in messages][0] == ("user", "Say hello.")
    streamed = "".join(e["text"] for e in seen_on_a if e["type"] == "delta")
    answer = Message.objects.get(pk=done["id"])
    assert streamed == done["content"] == answer.content and answer.content.strip()
    assert answer.status == MessageStatus.COMPLETE


def test_stop_pressed_on_node_a_stops_the_answer_running_on_node_b(cluster: Cluster, smollm: LLMModel) -> None:
    LLMModel.objects.filter(pk=smollm.pk).update(max_tokens=600)
    node_a, node_b = cluster.nodes
    alice = make_user("alice")
    cookie = session_cookie(alice)
    chat = conversation_create(owner=alice)
    path = f"/ws/c/{chat.id}/"
    with socket(node_a, path, cookie) as on_a, socket(node_b, path, cookie) as on_b:
        receive(on_a), receive(on_b)
        on_b.send(json.dumps({"type": "send", "content": "Write a very long story about the sea."}))
        before_stop = receive_until(on_a, "delta")  # the answer is streaming, from node B
        stopped_at = time.monotonic()
        on_a.send(json.dumps({"type": "stop"}))
        rest = receive_until(on_a, "done", "error", timeout=30)
        took = time.monotonic() - stopped_at
    done = rest[-1]
    assert done["type"] == "done" and done["status"] == "stopped", done
    assert took < 5, f"the stop took {took:.1f} s to reach node B and come back"
    answer = Message.objects.get(pk=done["id"])
    assert answer.status == MessageStatus.STOPPED
    # Stopped early: far fewer tokens than the 600 allowed, and what was streamed is kept.
    assert 0 < answer.completion_tokens < 600
    streamed = "".join(e["text"] for e in before_stop + rest if e["type"] == "delta")
    assert answer.content == streamed == done["content"]


def test_a_key_revoked_through_node_a_is_refused_by_node_b_at_once(cluster: Cluster, smollm: LLMModel) -> None:
    node_a, node_b = cluster.nodes
    alice = make_user("alice")
    api_key, secret = api_key_create(user=alice, name="laptop")
    auth = {"Authorization": f"Bearer {secret}"}
    assert httpx.get(node_b.url + "/api/tags", headers=auth, timeout=10).status_code == 200

    # Revoked on the keys page of node A, as Alice would in her browser.
    browser = httpx.Client(base_url=node_a.url, cookies={"sessionid": session_cookie(alice)}, timeout=10)
    page = browser.get("/settings/keys/")
    assert page.status_code == 200
    revoked = browser.post(f"/settings/keys/{api_key.pk}/revoke/", data={"csrfmiddlewaretoken": browser.cookies["csrftoken"]})
    assert revoked.status_code == 302, revoked.text[:500]

    refused = httpx.get(node_b.url + "/api/tags", headers=auth, timeout=10)
    assert refused.status_code == 401
    assert "error" in refused.json()
    assert httpx.post(node_b.url + "/v1/chat/completions", headers=auth, timeout=10,
                      json={"model": "smollm2:135m", "messages": [{"role": "user", "content": "hi"}]}).status_code == 401


def _pull_events(connection: Any, until_status: str = "succeeded") -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while not events or events[-1]["status"] not in ("succeeded", "failed", "cancelled"):
        event = receive(connection, timeout=90)
        if event["type"] == "pull" and event["pull"]["source"].endswith(SMOL_FILE):
            events.append(event["pull"])
    return events


def test_a_pull_started_through_node_a_shows_its_progress_to_admins_on_both_nodes(
    cluster: Cluster, hub: ModelServer, smollm: LLMModel
) -> None:
    node_a, node_b = cluster.nodes
    olga = make_user("olga", staff=True)
    _key, secret = api_key_create(user=olga, name="ops")
    cookie = session_cookie(olga)
    with socket(node_a, "/ws/admin/models/", cookie) as on_a, socket(node_b, "/ws/admin/models/", cookie) as on_b:
        with ThreadPoolExecutor(1) as pool:
            # Ollama's pull through node A; the worker downloads, both nodes relay its progress.
            pulling = pool.submit(
                httpx.post, node_a.url + "/api/pull", timeout=120, headers={"Authorization": f"Bearer {secret}"},
                json={"model": hub.url(SMOL_FILE), "stream": False},
            )
            seen_on_a = _pull_events(on_a)
            seen_on_b = _pull_events(on_b)
            response = pulling.result()
    assert response.status_code == 200 and response.json() == {"status": "success"}, response.text
    for events in (seen_on_a, seen_on_b):
        assert events[-1]["status"] == "succeeded", events[-1]
        running = [e for e in events if e["status"] == "running" and 0 < e["completed"] < e["total"]]
        assert running, f"no progress before the end: {events}"
    pulled = LLMModel.objects.get(digest=f"sha256:{SMOLLM_SHA256}", source=hub.url(SMOL_FILE))
    assert pulled.status == "ready"


def cluster_logs_tail(cluster: Cluster) -> str:
    return "\n".join(f"--- {child.name}\n{child.logs()[-2500:]}" for child in cluster.children)


def test_a_node_killed_mid_answer_keeps_the_text_so_far_and_the_other_node_carries_on(cluster: Cluster, smollm: LLMModel) -> None:
    LLMModel.objects.filter(pk=smollm.pk).update(max_tokens=1500)
    node_a, node_b = cluster.nodes
    alice = make_user("alice")
    cookie = session_cookie(alice)
    on_a_chat, on_b_chat = conversation_create(owner=alice), conversation_create(owner=alice)
    story = "Write a very long story about the sea, with many chapters."
    with (
        socket(node_a, f"/ws/c/{on_a_chat.id}/", cookie) as sender_a,
        socket(node_b, f"/ws/c/{on_a_chat.id}/", cookie) as watcher_b,
        socket(node_b, f"/ws/c/{on_b_chat.id}/", cookie) as sender_b,
    ):
        for connection in (sender_a, watcher_b, sender_b):
            receive(connection)
        sender_a.send(json.dumps({"type": "send", "content": story}))
        sender_b.send(json.dumps({"type": "send", "content": story}))
        streamed = receive_until(watcher_b, "delta")
        receive_until(sender_b, "delta")
        time.sleep(1.5)  # a few checkpoints of node A's answer (every 0.5 s here)
        ended_early = [e for e in streamed if e["type"] in ("done", "error")]
        if ended_early:
            pytest.fail(f"node A's answer ended before the kill: {ended_early}\n{cluster_logs_tail(cluster)}")
        running = Message.objects.get(conversation=on_a_chat, role="assistant")
        assert running.status == MessageStatus.STREAMING and running.content, "node A's answer should be running, checkpointed"
        node_a.child.kill()  # a crash: no clean-up runs on node A
        killed_at = time.monotonic()
        streamed += receive_until(watcher_b, "done", "error", timeout=30)
        noticed = time.monotonic() - killed_at
        # Node B's own answer renewed its lease: the sweep that ended node A's left it alone.
        finished_b = receive_until(sender_b, "done", "error", timeout=120)[-1]
    done = streamed[-1]
    assert done["type"] == "done" and done["status"] == "error", done
    assert "restarted" in done["error"]
    # The lease (8 s here) runs out, then the next sweep (every 1 s) finalises it.
    assert noticed < 15, f"the tab on node B waited {noticed:.1f} s"
    lost_answer = Message.objects.get(pk=done["id"])
    assert lost_answer.status == MessageStatus.ERROR and lost_answer.conversation_id == on_a_chat.id
    # The last checkpoint's text is kept: a prefix of what the tab saw streaming.
    seen = "".join(e["text"] for e in streamed if e["type"] == "delta")
    assert lost_answer.content and seen.startswith(lost_answer.content) and done["content"] == lost_answer.content
    assert finished_b["type"] == "done" and finished_b["status"] == "complete", finished_b
    assert Message.objects.get(pk=finished_b["id"]).status == MessageStatus.COMPLETE

    # Node A comes back; the tab reconnects (to either node) and finds the conversation as it
    # was: one question, one answer with an error, nothing doubled; and the next message works.
    cluster.restart(node_a)
    LLMModel.objects.filter(pk=smollm.pk).update(max_tokens=8)
    with socket(node_a, f"/ws/c/{on_a_chat.id}/", cookie) as again:
        assert receive(again) == {"type": "access", "level": "owner"}
        assert receive(again) == {"type": "done", "id": lost_answer.pk, "status": "error", "content": lost_answer.content,
                                  "error": lost_answer.error, "cut_off": False}
        again.send(json.dumps({"type": "send", "content": "Are you back?"}))
        assert receive_until(again, "done", "error")[-1]["status"] == "complete"
    roles = list(Message.objects.filter(conversation=on_a_chat).order_by("id").values_list("role", "status"))
    assert roles == [("user", "complete"), ("assistant", "error"), ("user", "complete"), ("assistant", "complete")]
