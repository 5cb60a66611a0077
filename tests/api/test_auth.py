"""Keys: who gets in, in which shape refusals come, and what revoking does."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import httpx
import ollama
import openai
import pytest
from django.contrib.auth.models import AbstractUser
from django.utils import timezone

from accounts.models import ApiKey
from accounts.selectors import hash_secret
from accounts.services import api_key_revoke
from models_admin.models import LLMModel

pytestmark = pytest.mark.django_db(transaction=True)


def test_missing_key_is_refused_in_each_protocols_error_shape(server: str, smollm: LLMModel) -> None:
    native = httpx.get(f"{server}/api/tags")
    assert native.status_code == 401
    assert isinstance(native.json()["error"], str) and "API key" in native.json()["error"]
    assert native.headers["WWW-Authenticate"].startswith("Bearer")

    v1 = httpx.get(f"{server}/v1/models")
    assert v1.status_code == 401
    error = v1.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "authentication_error"


def test_wrong_key_is_refused_by_both_official_clients(
    ollama_client: Callable[..., ollama.Client], openai_client: Callable[..., openai.OpenAI], smollm: LLMModel
) -> None:
    with pytest.raises(ollama.ResponseError) as native:
        ollama_client("sk-plat-not-a-real-key").list()
    assert native.value.status_code == 401
    with pytest.raises(openai.AuthenticationError):
        openai_client("sk-plat-not-a-real-key").models.list()


def test_revoked_key_is_refused_at_once(
    alice: AbstractUser, alice_key: str, ollama_client: Callable[..., ollama.Client], smollm: LLMModel
) -> None:
    client = ollama_client(alice_key)
    assert [m.model for m in client.list().models] == ["smollm2:135m"]

    api_key_revoke(api_key=ApiKey.objects.get(hashed_key=hash_secret(alice_key)))

    with pytest.raises(ollama.ResponseError) as refused:
        client.list()
    assert refused.value.status_code == 401


def test_deactivated_users_key_is_refused(
    alice: AbstractUser, alice_key: str, openai_client: Callable[..., openai.OpenAI], smollm: LLMModel
) -> None:
    client = openai_client(alice_key)
    assert [m.id for m in client.models.list()] == ["smollm2:135m"]
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_key_in_the_path_wins_over_chatboxs_placeholder_bearer(server: str, alice_key: str, smollm: LLMModel) -> None:
    # Chatbox's built-in Ollama provider always sends "Bearer ollama"; its host carries the key.
    headers = {"Authorization": "Bearer ollama"}
    assert httpx.get(f"{server}/v1/models", headers=headers).status_code == 401
    keyed = httpx.get(f"{server}/u/{alice_key}/v1/models", headers=headers)
    assert keyed.status_code == 200
    assert [m["id"] for m in keyed.json()["data"]] == ["smollm2:135m"]


def test_ollama_client_uses_ollama_api_key_from_the_environment(
    server: str, alice_key: str, smollm: LLMModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_API_KEY", alice_key)
    assert [m.model for m in ollama.Client(host=server).list().models] == ["smollm2:135m"]


def test_last_used_is_recorded_at_most_once_a_minute(
    alice_key: str, ollama_client: Callable[..., ollama.Client], smollm: LLMModel
) -> None:
    key = ApiKey.objects.get(hashed_key=hash_secret(alice_key))
    assert key.last_used_at is None
    client = ollama_client(alice_key)
    client.list()
    key.refresh_from_db()
    first = key.last_used_at
    assert first is not None

    client.list()
    key.refresh_from_db()
    assert key.last_used_at == first, "a second use within the minute must not write again"

    ApiKey.objects.filter(pk=key.pk).update(last_used_at=first - timedelta(minutes=2))
    client.list()
    key.refresh_from_db()
    assert key.last_used_at is not None and key.last_used_at > first - timedelta(seconds=1)
    assert timezone.now() - key.last_used_at < timedelta(minutes=1)


def test_health_check_answers_without_a_key_also_under_the_key_prefix(server: str, alice_key: str) -> None:
    for path in ("/", f"/u/{alice_key}", f"/u/{alice_key}/"):
        response = httpx.get(server + path)
        assert response.status_code == 200, path
        assert response.text == "Ollama is running"
        assert response.headers["Content-Type"].startswith("text/plain")
        assert httpx.head(server + path).status_code == 200


def test_browser_still_gets_the_web_app_at_the_root(server: str) -> None:
    response = httpx.get(server + "/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert response.status_code == 302 and "/accounts/login/" in response.headers["Location"]


def test_stored_key_is_a_hash_never_the_secret(alice_key: str) -> None:
    stored = ApiKey.objects.get()
    assert stored.hashed_key == hash_secret(alice_key)
    assert alice_key not in {stored.hashed_key, stored.prefix, stored.name}
    assert alice_key.startswith(stored.prefix) and len(stored.prefix) < len(alice_key) // 2
