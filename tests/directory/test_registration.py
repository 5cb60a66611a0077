"""Self-registration (off by default) and the approval queue: a waiting account sees only
the waiting page; its sockets and API keys are refused until an admin approves it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AbstractUser, User
from django.test import Client

from accounts.services import api_key_create
from audit.models import AuditEntry
from chat.access import Access, conversation_access
from chat.services import conversation_create
from directory.models import Profile
from models_admin.models import LLMModel
from directory.services import registration_approve, registration_create
from platform.asgi import application
from tests.chat.helpers import connect, session_cookie
from tests.conftest import LiveServer

SIGN_UP = {
    "username": "newcomer",
    "email": "newcomer@example.com",
    "password1": "a long enough passphrase",
    "password2": "a long enough passphrase",
}


@pytest.fixture
def open_registration(settings: Any) -> None:
    settings.REGISTRATION_OPEN = True


@pytest.mark.django_db
def test_sign_up_is_closed_by_default() -> None:
    assert Client().get("/accounts/register/").status_code == 404
    assert Client().post("/accounts/register/", SIGN_UP).status_code == 404
    assert not User.objects.filter(username="newcomer").exists()


@pytest.mark.django_db
def test_sign_up_waits_for_approval_and_sees_only_the_waiting_page(open_registration: None, admin_user: AbstractUser) -> None:
    visitor = Client()
    assert visitor.get("/accounts/register/").status_code == 200
    signed_up = visitor.post("/accounts/register/", {**SIGN_UP, "is_staff": "on", "is_superuser": "on"})
    assert signed_up.status_code == 302 and signed_up["Location"] == "/accounts/waiting/"
    user = User.objects.get(username="newcomer")
    assert user.is_active and not user.is_staff and not user.is_superuser
    assert Profile.objects.get(user=user).pending
    assert AuditEntry.objects.filter(action="user.registered", target="newcomer").count() == 1

    waiting = visitor.get("/accounts/waiting/")
    assert waiting.status_code == 200 and b'id="waiting-notice"' in waiting.content
    for page in ("/", "/settings/keys/", "/p/", "/admin/models/"):
        response = visitor.get(page, HTTP_ACCEPT="text/html")
        assert response.status_code == 302 and response["Location"] == "/accounts/waiting/", page
    refused = visitor.post("/c/new/", {}, content_type="application/json", HTTP_ACCEPT="application/json")
    assert refused.status_code == 403 and refused.json()["code"] == "account_pending"
    assert visitor.post("/settings/keys/", {"name": "sneaky"}).status_code == 403
    assert not user.api_keys.exists()

    # Approved from the queue: everything opens.
    admin = Client()
    admin.force_login(admin_user)
    assert admin.post(f"/admin/users/{user.pk}/approve/").status_code == 302
    assert visitor.get("/", HTTP_ACCEPT="text/html").status_code == 200
    assert visitor.get("/accounts/waiting/")["Location"] == "/"
    assert AuditEntry.objects.filter(action="user.approved", target="newcomer", actor_name="admin").count() == 1


@pytest.mark.django_db
def test_rejected_sign_up_is_removed(open_registration: None, admin_user: AbstractUser) -> None:
    user = registration_create(username="spammer", email="s@example.com", password="a long enough passphrase", address="")
    admin = Client()
    admin.force_login(admin_user)
    assert admin.post(f"/admin/users/{user.pk}/reject/").status_code == 302
    assert not User.objects.filter(username="spammer").exists()
    # Only waiting accounts can be rejected: an ordinary one stays.
    assert admin.post(f"/admin/users/{admin_user.pk}/reject/").status_code == 302
    assert User.objects.filter(pk=admin_user.pk).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_waiting_account_gets_no_socket(smollm: LLMModel, settings: Any) -> None:
    settings.REGISTRATION_OPEN = True
    user = await database_sync_to_async(registration_create)(
        username="newcomer", email="n@example.com", password="a long enough passphrase", address=""
    )
    conversation = await database_sync_to_async(conversation_create)(owner=user)
    assert await database_sync_to_async(conversation_access)(user=user, conversation=conversation) == Access.NONE
    _socket, connected = await connect(user, conversation.id)
    assert not connected

    cookie = await session_cookie(user)
    home = WebsocketCommunicator(application, "/ws/home/", headers=[(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1"), (b"cookie", f"sessionid={cookie}".encode())])
    connected, code = await home.connect(timeout=10)
    assert not connected and code == 4403


@pytest.mark.django_db(transaction=True)
def test_waiting_accounts_api_key_is_refused_in_each_protocols_shape(live_platform: LiveServer, admin_user: AbstractUser, settings: Any) -> None:
    settings.REGISTRATION_OPEN = True
    user = registration_create(username="newcomer", email="n@example.com", password="a long enough passphrase", address="")
    _key, secret = api_key_create(user=user, name="made before approval")  # e.g. by a command
    headers = {"Authorization": f"Bearer {secret}"}
    ollama = httpx.get(f"{live_platform.url}/api/tags", headers=headers, timeout=30)
    assert ollama.status_code == 403 and ollama.json() == {"error": "this account is waiting for an administrator's approval"}
    openai = httpx.get(f"{live_platform.url}/v1/models", headers=headers, timeout=30)
    assert openai.status_code == 403
    assert openai.json()["error"]["type"] == "permission_error" and openai.json()["error"]["code"] == "account_pending"

    registration_approve(user=user, by=admin_user, address="")
    assert httpx.get(f"{live_platform.url}/api/tags", headers=headers, timeout=30).status_code == 200
