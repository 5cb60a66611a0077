"""Metrics on their own port and a request id that follows a request from the web node to the
engine, on the real platform (daphne, the embedded engine with the bundled model).

The engine-header assertion needs to see the headers the engine received, which llama.cpp
does not show: there, the upstream is a scripted OpenAI-compatible server on loopback that
records them (model ``recorder``)."""

from __future__ import annotations

import json
import time
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from accounts.services import api_key_create
from models_admin.models import Backend, LLMModel, Pull, PullStatus, VllmEndpoint
from tests.conftest import LiveServer, free_port, make_user, start_live_server

pytestmark = pytest.mark.django_db(transaction=True)

SEEN_HEADERS: list[dict[str, str]] = []


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        SEEN_HEADERS.append({k.lower(): v for k, v in self.headers.items()})
        chunk = {"choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]}
        body = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def recorder() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def observed(django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory,
             recorder: str) -> Iterator[tuple[LiveServer, str]]:
    port = free_port()
    env = {"METRICS_PORT": str(port), "LOG_FORMAT": "json", "VLLM_URL": recorder}
    with start_live_server(django_db_blocker, tmp_path_factory.mktemp("observed"), env) as server:
        yield server, f"http://127.0.0.1:{port}/metrics"


def _samples(metrics_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(metrics_url, timeout=5).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _log_records(server: LiveServer) -> list[dict[str, Any]]:
    records = []
    for line in server.logs().splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def test_requests_and_answers_are_counted_by_route_and_model_on_the_metrics_port(
    observed: tuple[LiveServer, str], smollm: LLMModel
) -> None:
    server, metrics_url = observed
    alice = make_user("alice")
    _key, secret = api_key_create(user=alice, name="laptop")
    auth = {"Authorization": f"Bearer {secret}"}
    before = _samples(metrics_url)
    assert httpx.get(server.url + "/api/tags", headers=auth, timeout=10).status_code == 200
    assert httpx.get(server.url + "/api/tags", timeout=10).status_code == 401
    for _ in range(2):  # two conversations' pages (not signed in: sent to the sign-in page)
        assert httpx.get(server.url + f"/c/{uuid.uuid4()}/", timeout=10).status_code == 302
    answer = httpx.post(server.url + "/api/generate", headers=auth, timeout=60,
                        json={"model": "smollm2:135m", "prompt": "Say hi.", "stream": False, "options": {"num_predict": 8}})
    assert answer.status_code == 200
    after = _samples(metrics_url)

    def grew(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert grew("platform_http_requests_total", route="api-tags", method="GET", status="200") == 1
    assert grew("platform_http_requests_total", route="api-tags", method="GET", status="401") == 1
    assert grew("platform_time_to_first_token_seconds_count", model="smollm2:135m") == 1
    assert grew("platform_tokens_per_second_count", model="smollm2:135m") == 1
    assert grew("platform_generations_total", model="smollm2:135m", outcome="complete") == 1
    assert _value(after, "platform_generations_in_flight", model="smollm2:135m", interface="api") == 0
    assert _value(after, "platform_engine_queue_depth", model="smollm2:135m") == 0
    # No raw paths in labels: both conversation pages are counted under their URL's name.
    assert grew("platform_http_requests_total", route="conversation", method="GET", status="302") == 2
    assert not any(dict(labels).get("route", "").startswith("/") for (_name, labels) in after)

    # Not on the users' port.
    assert httpx.get(server.url + "/metrics", timeout=10).status_code == 404


def test_pulls_and_engine_replicas_are_read_from_the_database_at_scrape_time(observed: tuple[LiveServer, str]) -> None:
    _server, metrics_url = observed
    Pull.objects.create(source="https://models.example/a.gguf", model_name="a", kind="url", status=PullStatus.FAILED)
    Pull.objects.create(source="https://models.example/b.gguf", model_name="b", kind="url", status=PullStatus.RUNNING)
    VllmEndpoint.objects.create(url="http://gpu-1:8000", healthy=True)
    VllmEndpoint.objects.create(url="http://gpu-2:8000", healthy=False)
    samples = _samples(metrics_url)
    assert _value(samples, "platform_pulls", status="failed") == 1
    assert _value(samples, "platform_pulls", status="running") == 1
    assert _value(samples, "platform_engine_replica_up", url="http://gpu-1:8000") == 1
    assert _value(samples, "platform_engine_replica_up", url="http://gpu-2:8000") == 0


def test_a_request_id_follows_the_request_into_the_logs_and_to_the_engine(observed: tuple[LiveServer, str]) -> None:
    server, _metrics_url = observed
    LLMModel.objects.create(name="recorder", tag="latest", backend=Backend.VLLM, upstream_name="recorder",
                            format="safetensors", context_length=4096, capabilities=["completion"])
    alice = make_user("alice")
    _key, secret = api_key_create(user=alice, name="laptop")
    SEEN_HEADERS.clear()
    response = httpx.post(server.url + "/v1/chat/completions", timeout=30,
                          headers={"Authorization": f"Bearer {secret}", "X-Request-ID": "chatbox-7f3a.1"},
                          json={"model": "recorder", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == "chatbox-7f3a.1"
    assert SEEN_HEADERS and SEEN_HEADERS[-1]["x-request-id"] == "chatbox-7f3a.1"
    # The engine call's log line carries it, as one JSON object per line (LOG_FORMAT=json).
    engine_lines = [r for r in _log_records(server) if r.get("request_id") == "chatbox-7f3a.1"]
    assert any("/v1/chat/completions" in r["message"] for r in engine_lines), engine_lines
    assert {"time", "level", "logger", "message"} <= set(engine_lines[0])


@pytest.mark.parametrize("incoming", ["<script>alert(1)</script>", "x" * 65, "two\nlines"])
def test_an_unsafe_request_id_is_replaced_by_a_new_one(observed: tuple[LiveServer, str], incoming: str) -> None:
    server, _metrics_url = observed
    headers = {"X-Request-ID": incoming.replace("\n", " ")}
    response = httpx.get(server.url + "/healthz", headers=headers, timeout=10)
    given = response.headers["x-request-id"]
    assert given != incoming.replace("\n", " ") and len(given) == 32 and int(given, 16) >= 0
    # Each request without one gets its own.
    assert httpx.get(server.url + "/healthz", timeout=10).headers["x-request-id"] != given


def test_plain_log_lines_show_the_request_id(tmp_path: Path) -> None:
    import logging

    from observability.context import RequestIdFilter, request_id

    record = logging.LogRecord("engine", logging.INFO, __file__, 1, "called", None, None)
    token = request_id.set("abc123")
    try:
        assert RequestIdFilter().filter(record) and record.request_id == "abc123"  # type: ignore[attr-defined]
    finally:
        request_id.reset(token)
    assert RequestIdFilter().filter(record) and record.request_id == "-"  # type: ignore[attr-defined]


def test_open_sockets_are_counted_by_route_with_ids_folded(observed: tuple[LiveServer, str], smollm: LLMModel) -> None:
    from django.test import Client
    from websockets.sync.client import connect as ws_connect
    from websockets.typing import Origin

    from chat.services import conversation_create

    server, metrics_url = observed
    alice = make_user("alice")
    browser = Client()
    browser.force_login(alice)
    chats = [conversation_create(owner=alice) for _ in range(2)]
    sockets = [
        ws_connect(server.url.replace("http://", "ws://") + f"/ws/c/{chat.id}/", origin=Origin(server.url), proxy=None,
                   additional_headers={"Cookie": f"sessionid={browser.cookies['sessionid'].value}"}, open_timeout=10)
        for chat in chats
    ]
    for connection in sockets:
        assert json.loads(connection.recv(timeout=10))["type"] == "access"
    assert _value(_samples(metrics_url), "platform_websockets_open", route="/ws/c/:id/") == 2
    for connection in sockets:
        connection.close()
    deadline = time.monotonic() + 5
    while _value(_samples(metrics_url), "platform_websockets_open", route="/ws/c/:id/") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _value(_samples(metrics_url), "platform_websockets_open", route="/ws/c/:id/") == 0
