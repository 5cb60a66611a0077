"""The API's lean middleware stack still honours ALLOWED_HOSTS and sends nosniff."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from channels.testing import HttpCommunicator
from django.conf import settings as django_settings
from django.contrib.auth.models import AbstractUser
from django.http import HttpRequest, JsonResponse
from django.test import AsyncRequestFactory

from accounts.services import api_key_create
from api.middleware import api_host_and_nosniff
from models_admin.models import LLMModel
from tests.conftest import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)

BAD_HOST = "evil.example"


@pytest.fixture
def server(live_platform: LiveServer, transactional_db: None) -> str:
    return live_platform.url  # started with ALLOWED_HOSTS=127.0.0.1,localhost


@pytest.fixture
def key(alice: AbstractUser) -> str:
    return api_key_create(user=alice, name="tests")[1]


def _nosniff(response: httpx.Response) -> bool:
    return response.headers.get("x-content-type-options") == "nosniff"


def test_nosniff_on_api_answers_and_errors(server: str, key: str, smollm: LLMModel) -> None:
    auth = {"Authorization": f"Bearer {key}"}
    answers = [
        httpx.get(server + "/api/tags", headers=auth),
        httpx.get(server + "/v1/models", headers=auth),
        httpx.get(f"{server}/u/{key}/api/version"),
    ]
    errors = [
        httpx.get(server + "/api/tags"),  # 401
        httpx.get(server + "/v1/models", headers={"Authorization": "Bearer wrong"}),  # 401
        httpx.get(server + "/api/nothing-here", headers=auth),  # 404
        httpx.post(server + "/api/tags", headers=auth),  # 405
        httpx.post(server + "/v1/chat/completions", headers=auth, content=b"{not json"),  # 400
    ]
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert [r.status_code for r in errors] == [401, 401, 404, 405, 400]
    for response in answers + errors:
        assert _nosniff(response), (response.request.url, response.headers)


def test_nosniff_on_a_streamed_answer(server: str, key: str, smollm: LLMModel) -> None:
    body = {"model": "smollm2:135m", "prompt": "Hi", "stream": True, "options": {"num_predict": 1}}
    with httpx.stream("POST", server + "/api/generate", json=body, headers={"Authorization": f"Bearer {key}"},
                      timeout=120) as response:
        assert response.status_code == 200
        assert _nosniff(response)
        response.read()


@pytest.mark.parametrize("path", ["/api/tags", "/u/{key}/api/tags", "/api/chat"])
def test_bad_host_is_400_in_ollamas_shape(server: str, key: str, smollm: LLMModel, path: str) -> None:
    # A valid key does not help: the Host decides first, as for the pages.
    response = httpx.get(server + path.format(key=key), headers={"Host": BAD_HOST, "Authorization": f"Bearer {key}"})
    assert response.status_code == 400
    assert response.json() == {"error": "invalid Host header"}
    assert _nosniff(response)


@pytest.mark.parametrize("path", ["/v1/models", "/u/{key}/v1/models", "/v1/chat/completions"])
def test_bad_host_is_400_in_openais_shape(server: str, key: str, smollm: LLMModel, path: str) -> None:
    response = httpx.get(server + path.format(key=key), headers={"Host": BAD_HOST, "Authorization": f"Bearer {key}"})
    assert response.status_code == 400
    assert response.json() == {
        "error": {"message": "invalid Host header", "type": "invalid_request_error", "param": None, "code": "invalid_host"}
    }
    assert _nosniff(response)


def test_allowed_hosts_are_served(server: str, key: str, smollm: LLMModel) -> None:
    port = httpx.URL(server).port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
        for path in ("/api/tags", "/v1/models"):
            response = httpx.get(server + path, headers={"Host": host, "Authorization": f"Bearer {key}"})
            assert response.status_code == 200, (host, path, response.text)


# --- In this process: the middleware itself and the ASGI routing ---------------------------


def test_the_middleware_is_async_only_and_runs_first() -> None:
    assert api_host_and_nosniff.sync_capable is False  # type: ignore[attr-defined]
    assert api_host_and_nosniff.async_capable is True  # type: ignore[attr-defined]
    # Outermost: CORS preflights (answered by CorsMiddleware itself) get the check and nosniff too.
    assert django_settings.API_MIDDLEWARE[0] == "api.middleware.api_host_and_nosniff"


async def _ok(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


@pytest.mark.parametrize("host", ["testserver", "localhost:8000", "127.0.0.1", "[::1]:11434"])
async def test_default_allowed_hosts_pass(host: str) -> None:
    # platform/settings.py's default ALLOWED_HOSTS: 127.0.0.1, localhost, [::1], testserver.
    request = AsyncRequestFactory().get("/api/tags")
    request.META["HTTP_HOST"] = host
    response = await api_host_and_nosniff(_ok)(request)
    assert response.status_code == 200 and response["X-Content-Type-Options"] == "nosniff"


async def test_cors_preflight_gets_nosniff_and_the_host_check(settings: Any) -> None:
    from platform.asgi import application

    settings.CORS_ALLOWED_ORIGINS = ["https://web.chatboxai.app"]
    preflight = [(b"origin", b"https://web.chatboxai.app"), (b"access-control-request-method", b"POST")]
    good = await HttpCommunicator(application, "OPTIONS", "/v1/chat/completions",
                                  headers=[(b"host", b"localhost"), *preflight]).get_response()
    assert good["status"] == 200
    headers = {name.lower(): value for name, value in good["headers"]}
    assert headers[b"access-control-allow-origin"] == b"https://web.chatboxai.app"
    assert headers[b"x-content-type-options"] == b"nosniff"
    bad = await HttpCommunicator(application, "OPTIONS", "/v1/chat/completions",
                                 headers=[(b"host", BAD_HOST.encode()), *preflight]).get_response()
    assert bad["status"] == 400
