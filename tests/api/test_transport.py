"""HTTP-level behaviour clients rely on: methods, slashes, CORS, body limits, unknown paths."""

from __future__ import annotations

import httpx
import pytest

from models_admin.models import LLMModel

from .conftest import CORS_ORIGIN, SMALL_BODY_LIMIT

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/tags"), ("GET", "/api/chat"), ("PUT", "/api/version"), ("GET", "/v1/chat/completions"),
     ("POST", "/v1/models"), ("POST", "/api/delete"), ("POST", "/")],
)
def test_wrong_method_is_405_with_a_json_error(server: str, alice_key: str, method: str, path: str) -> None:
    response = httpx.request(method, server + path, headers={"Authorization": f"Bearer {alice_key}"}, json={})
    assert response.status_code == 405
    assert "error" in response.json()
    assert response.headers["Allow"]


def test_trailing_slash_is_served_not_redirected(server: str, alice_key: str, smollm: LLMModel) -> None:
    headers = {"Authorization": f"Bearer {alice_key}"}
    for path in ("/api/tags", "/api/tags/", "/v1/models", "/v1/models/", f"/u/{alice_key}/api/tags/"):
        response = httpx.get(server + path, headers=headers, follow_redirects=False)
        assert response.status_code == 200, path
    shown = httpx.post(f"{server}/api/show/", json={"model": "smollm2:135m"}, headers=headers, follow_redirects=False)
    assert shown.status_code == 200


def test_api_needs_no_csrf_token(server: str, alice_key: str, smollm: LLMModel) -> None:
    # A POST with a session-less client and no CSRF cookie is fine: keys, not cookies.
    response = httpx.post(
        f"{server}/api/show", json={"model": "smollm2:135m"},
        headers={"Authorization": f"Bearer {alice_key}", "Origin": "https://elsewhere.example"},
    )
    assert response.status_code == 200


def test_unknown_api_paths_get_json_404s(server: str, alice_key: str) -> None:
    native = httpx.get(f"{server}/api/nothing-here")
    assert native.status_code == 404 and isinstance(native.json()["error"], str)
    v1 = httpx.post(f"{server}/u/{alice_key}/v1/responses", json={})
    assert v1.status_code == 404 and v1.json()["error"]["type"] == "not_found_error"


@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/completions", "/u/{key}/api/chat", "/u/{key}/v1/chat/completions"])
def test_cors_preflight_allows_configured_origins(configured_server: str, alice_key: str, path: str) -> None:
    url = configured_server + path.format(key=alice_key)
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type"}
    allowed = httpx.options(url, headers={"Origin": CORS_ORIGIN, **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == CORS_ORIGIN
    assert {"authorization", "content-type"} <= set(allowed.headers["Access-Control-Allow-Headers"].split(", "))
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    other = httpx.options(url, headers={"Origin": "https://evil.example", **preflight})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_cors_headers_on_actual_responses(configured_server: str, alice_key: str, smollm: LLMModel) -> None:
    response = httpx.get(
        f"{configured_server}/api/tags", headers={"Origin": CORS_ORIGIN, "Authorization": f"Bearer {alice_key}"}
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == CORS_ORIGIN


def test_oversize_body_is_413_in_each_protocols_shape(configured_server: str, alice_key: str, smollm: LLMModel) -> None:
    huge = "x" * (SMALL_BODY_LIMIT + 1)
    headers = {"Authorization": f"Bearer {alice_key}"}
    native = httpx.post(
        f"{configured_server}/api/chat", json={"model": "smollm2:135m", "messages": [{"role": "user", "content": huge}]}, headers=headers
    )
    assert native.status_code == 413 and "too large" in native.json()["error"]
    v1 = httpx.post(
        f"{configured_server}/v1/chat/completions",
        json={"model": "smollm2:135m", "messages": [{"role": "user", "content": huge}]}, headers=headers,
    )
    assert v1.status_code == 413 and "too large" in v1.json()["error"]["message"]
