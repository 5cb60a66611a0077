"""The API-key page: create (shown once), list, revoke; only ever one's own keys."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import AbstractUser
from django.test import Client

from accounts.models import ApiKey
from accounts.selectors import api_key_for_secret
from accounts.services import api_key_create

pytestmark = pytest.mark.django_db
secret_pattern = re.compile(r'value="(sk-plat-[A-Za-z0-9]+)"')


def _client(user: AbstractUser) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_key_page_needs_a_login() -> None:
    response = Client().get("/settings/keys/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_created_key_is_shown_once_and_works(alice: AbstractUser) -> None:
    client = _client(alice)
    posted = client.post("/settings/keys/", {"name": "Chatbox on my laptop"})
    assert posted.status_code == 302 and posted["Location"] == "/settings/keys/"
    assert secret_pattern.search(posted.content.decode()) is None
    created = client.get("/settings/keys/")
    assert created.status_code == 200
    assert "no-store" in created["Cache-Control"]
    secret = secret_pattern.search(created.content.decode())
    assert secret is not None
    key = api_key_for_secret(secret=secret.group(1))
    assert key is not None and key.user == alice and key.name == "Chatbox on my laptop"
    assert f"/u/{secret.group(1)}" in created.content.decode()  # the host for Chatbox's Ollama provider

    # Shown once: the next visit lists the key without its secret.
    listed = client.get("/settings/keys/").content.decode()
    assert "Chatbox on my laptop" in listed and key.prefix in listed
    assert secret.group(1) not in listed


def test_reloading_after_creating_a_key_does_not_create_another(alice: AbstractUser) -> None:
    client = _client(alice)
    response = client.post("/settings/keys/", {"name": "only once"}, follow=True)
    assert response.status_code == 200 and response.redirect_chain == [("/settings/keys/", 302)]
    assert secret_pattern.search(response.content.decode()) is not None
    # A reload of the page the browser landed on is a GET: no form is posted again.
    reloaded = client.get("/settings/keys/")
    assert reloaded.status_code == 200 and secret_pattern.search(reloaded.content.decode()) is None
    assert ApiKey.objects.filter(user=alice).count() == 1


def test_a_secret_left_in_the_session_is_not_shown_once_the_key_is_revoked(alice: AbstractUser) -> None:
    client = _client(alice)
    client.post("/settings/keys/", {"name": "revoked at once"})
    key = ApiKey.objects.get(user=alice)
    client.post(f"/settings/keys/{key.id}/revoke/")
    assert secret_pattern.search(client.get("/settings/keys/").content.decode()) is None


def test_key_needs_a_name(alice: AbstractUser) -> None:
    response = _client(alice).post("/settings/keys/", {"name": "   "})
    assert response.status_code == 200
    assert not ApiKey.objects.exists()
    assert "field-invalid" in response.content.decode()


def test_owner_revokes_a_key(alice: AbstractUser) -> None:
    key, secret = api_key_create(user=alice, name="retired-key-name")
    response = _client(alice).post(f"/settings/keys/{key.id}/revoke/")
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert api_key_for_secret(secret=secret) is None
    assert "retired-key-name" not in _client(alice).get("/settings/keys/").content.decode()


def test_nobody_sees_or_revokes_anothers_key(alice: AbstractUser, bob: AbstractUser) -> None:
    key, _secret = api_key_create(user=alice, name="alices key")
    assert "alices key" not in _client(bob).get("/settings/keys/").content.decode()
    response = _client(bob).post(f"/settings/keys/{key.id}/revoke/")
    assert response.status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


def test_revoke_needs_post(alice: AbstractUser) -> None:
    key, _secret = api_key_create(user=alice, name="k")
    assert _client(alice).get(f"/settings/keys/{key.id}/revoke/").status_code == 405
    key.refresh_from_db()
    assert key.revoked_at is None
