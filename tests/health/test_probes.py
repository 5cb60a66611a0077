"""``/healthz`` and ``/readyz`` on the real server (daphne), and the readiness checks."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import httpx
import pytest
from channels.layers import InMemoryChannelLayer
from django.conf import settings as django_settings

from health import checks
from inference.engines import embedded_engine
from models_admin.models import LLMModel
from models_admin.selectors import model_spec
from tests.conftest import LiveServer, free_port

pytestmark = pytest.mark.django_db(transaction=True)

# Probes come from IP addresses and service names, never from the names in ALLOWED_HOSTS.
FOREIGN_HOSTS = ["10.1.2.3:8000", "172.17.0.5", "web:8000", "[fd00::7]:8000", "evil.example"]


@pytest.fixture
def server(live_platform: LiveServer, transactional_db: None) -> str:
    return live_platform.url


def _assert_no_session(response: httpx.Response) -> None:
    assert "set-cookie" not in response.headers
    assert "cookie" not in response.headers.get("vary", "").lower()


def test_healthz_is_ok_without_any_check(server: str) -> None:
    for path in ("/healthz", "/healthz/"):
        response = httpx.get(server + path, follow_redirects=False)
        assert response.status_code == 200, path
        assert response.json() == {"status": "ok"}
        assert response.headers["content-type"] == "application/json"
        assert response.headers["cache-control"] == "no-store"
        _assert_no_session(response)


def test_readyz_is_ok_when_everything_answers(server: str, smollm: LLMModel) -> None:
    response = httpx.get(server + "/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "channel_layer", "engine"}
    for name, check in body["checks"].items():
        assert check["ok"] is True, (name, check)
        assert isinstance(check["ms"], float) and check["ms"] >= 0
        assert "error" not in check
    assert body["checks"]["engine"]["backend"] == "embedded"
    # In-memory here, Redis when REDIS_URL is set (CI): the server's layer, as configured.
    layer_class = django_settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[1]
    assert body["checks"]["channel_layer"]["backend"] == layer_class
    _assert_no_session(response)


def test_readyz_is_503_when_the_default_models_engine_is_unreachable(server: str, unreachable_default: LLMModel) -> None:
    started = time.monotonic()
    response = httpx.get(server + "/readyz", timeout=30)
    assert time.monotonic() - started < 10
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["status"] == "fail"
    engine = body["checks"]["engine"]
    assert engine["ok"] is False
    assert engine["backend"] == "vllm"
    assert "does not answer" in engine["error"]
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["channel_layer"]["ok"] is True
    _assert_no_session(response)


def test_readyz_is_503_when_the_default_models_file_is_gone(server: str, missing_file_default: LLMModel) -> None:
    response = httpx.get(server + "/readyz")
    assert response.status_code == 503
    engine = response.json()["checks"]["engine"]
    assert engine["ok"] is False and "GGUF file is missing" in engine["error"]
    assert "/nonexistent" not in response.text  # no server paths in an unauthenticated answer


def test_readyz_without_any_model_is_ok(server: str) -> None:
    # A fresh installation must be reachable so that an admin can pull a model.
    response = httpx.get(server + "/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["engine"] == {
        "ok": True, "ms": response.json()["checks"]["engine"]["ms"], "backend": None,
        "detail": "no model is registered yet",
    }


@pytest.mark.parametrize("host", FOREIGN_HOSTS)
def test_probes_answer_whatever_the_host_header(server: str, smollm: LLMModel, host: str) -> None:
    for path in ("/healthz", "/readyz"):
        response = httpx.get(server + path, headers={"Host": host})
        assert response.status_code == 200, (path, host, response.text)
        _assert_no_session(response)
    # The pages still refuse such a host (the probes' way round the check is theirs alone).
    assert httpx.get(server + "/accounts/login/", headers={"Host": host}).status_code == 400


def test_probes_need_no_session_csrf_or_login(server: str, smollm: LLMModel) -> None:
    # A session cookie is neither needed nor touched; a POST is a 405, not a CSRF 403.
    response = httpx.get(server + "/readyz", headers={"Cookie": "sessionid=bogus; csrftoken=bogus"})
    assert response.status_code == 200
    _assert_no_session(response)
    posted = httpx.post(server + "/readyz", json={})
    assert posted.status_code == 405
    _assert_no_session(posted)
    assert httpx.head(server + "/healthz").status_code == 200


# --- The checks, in this process -------------------------------------------------------------


async def test_readiness_does_not_load_an_embedded_model(smollm: LLMModel) -> None:
    spec = model_spec(smollm)
    engine = embedded_engine()
    engine.unload(spec)
    result = await checks.run_check(checks.engine_check, timeout=5)
    assert result["ok"] is True and result["loaded"] is False, result
    assert engine.loaded_model(spec) is None


async def test_readiness_asks_a_loaded_model_without_using_its_keep_alive(smollm: LLMModel) -> None:
    spec = model_spec(smollm)
    engine = embedded_engine()
    loaded = await engine.load_async(spec)
    try:
        deadline, last_used = loaded.idle_deadline, loaded.last_used
        result = await checks.run_check(checks.engine_check, timeout=5)
        assert result["ok"] is True and result["loaded"] is True, result
        # The probe is not a use: the model still unloads when its keep-alive runs out.
        assert (loaded.idle_deadline, loaded.last_used, loaded.in_flight) == (deadline, last_used, 0)
    finally:
        engine.unload(spec)


async def test_a_hanging_check_answers_on_time_even_if_its_clean_up_hangs() -> None:
    async def hangs() -> dict[str, Any]:
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(60)  # a clean-up that hangs like the dependency does
        return {}

    started = time.monotonic()
    result = await checks.run_check(hangs, timeout=0.2)
    assert time.monotonic() - started < 1
    assert result["ok"] is False and result["error"] == "no answer within 0.2 s"


async def test_an_unexpected_error_is_named_not_detailed() -> None:
    async def breaks() -> dict[str, Any]:
        raise ConnectionError("connection to server at 10.0.0.5 failed for user platform")

    result = await checks.run_check(breaks, timeout=1)
    assert result["ok"] is False
    assert result["error"] == "ConnectionError (details in the server log)"


async def test_database_check() -> None:
    assert (await checks.run_check(checks.database_check, timeout=3))["ok"] is True


async def test_in_memory_channel_layer_round_trip_leaves_nothing_behind() -> None:
    layer = InMemoryChannelLayer()
    result = await checks.run_check(lambda: checks.channel_layer_check(layer), timeout=3)
    assert result["ok"] is True and result["backend"] == "InMemoryChannelLayer"
    assert layer.channels == {}


def _redis_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _redis_up(), reason="needs Redis on 127.0.0.1:6379")
async def test_redis_channel_layer_round_trip_leaves_no_subscription() -> None:
    import redis.asyncio
    from channels_redis.pubsub import RedisPubSubChannelLayer

    prefix = f"healthtest{free_port()}"
    layer = RedisPubSubChannelLayer(hosts=["redis://127.0.0.1:6379/0"], prefix=prefix)
    try:
        for _ in range(3):
            result = await checks.run_check(lambda: checks.channel_layer_check(layer), timeout=3)
            assert result["ok"] is True and result["backend"] == "RedisPubSubChannelLayer", result
        client = redis.asyncio.Redis(host="127.0.0.1", port=6379)
        try:
            assert await client.pubsub_channels(f"{prefix}*") == []
        finally:
            await client.aclose()
    finally:
        await layer.flush()


async def test_unreachable_redis_channel_layer_fails_in_time() -> None:
    from channels_redis.pubsub import RedisPubSubChannelLayer

    layer = RedisPubSubChannelLayer(hosts=[f"redis://127.0.0.1:{free_port()}/0"])
    started = time.monotonic()
    result = await checks.run_check(lambda: checks.channel_layer_check(layer), timeout=1)
    assert time.monotonic() - started < 2
    assert result["ok"] is False and result["error"], result
