"""Who may use which model: set on the admin page, enforced in the browser chat (page and
socket). The admin page and socket are for staff only and do not announce themselves."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import AbstractUser
from django.test import Client

from chat.services import conversation_create
from models_admin.models import Access, AdminAction, LLMModel
from models_admin.services.registry import model_copy
from projects.models import Project
from projects.services import member_add, project_create, project_leave
from tests.chat.helpers import connect, receive_until

from .helpers import admin_socket


@pytest.fixture
def secret_model(admin_user: AbstractUser, alice: AbstractUser, smollm: LLMModel) -> LLMModel:
    """A copy of the bundled model that only alice may use."""
    model = model_copy(actor=admin_user, source=smollm.full_name, destination="finance-bot:latest")
    client = Client()
    client.force_login(admin_user)
    response = client.post(f"/admin/models/{model.id}/access/", {"access": "restricted", "users": [alice.pk]})
    assert response.status_code == 302
    model.refresh_from_db()
    return model


def page_models(user: AbstractUser) -> list[str]:
    client = Client()
    client.force_login(user)
    response = client.get("/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    return [m["name"] for m in response.context["page_data"]["models"]]


@pytest.mark.django_db
def test_access_edit_is_saved_and_audited(alice: AbstractUser, charlie: AbstractUser, admin_user: AbstractUser, secret_model: LLMModel) -> None:
    assert secret_model.access == Access.RESTRICTED
    assert list(secret_model.allowed_users.values_list("username", flat=True)) == ["alice"]
    action = AdminAction.objects.get(action="model.access")
    assert action.actor == admin_user and action.details == {"access": "restricted", "users": [alice.pk], "groups": [], "projects": []}


@pytest.mark.django_db
def test_restricted_model_is_listed_only_for_allowed_users(alice: AbstractUser, charlie: AbstractUser, admin_user: AbstractUser, secret_model: LLMModel) -> None:
    assert "finance-bot:latest" in page_models(alice)
    assert "finance-bot:latest" in page_models(admin_user)
    charlies = page_models(charlie)
    assert "finance-bot:latest" not in charlies and "smollm2:135m" in charlies
    client = Client()
    client.force_login(charlie)
    assert b"finance-bot" not in client.get("/", HTTP_ACCEPT="text/html").content


@pytest.mark.django_db
def test_outsider_cannot_start_a_chat_with_a_restricted_model(charlie: AbstractUser, secret_model: LLMModel) -> None:
    client = Client()
    client.force_login(charlie)
    response = client.post("/c/new/", {"model": "finance-bot:latest"}, content_type="application/json")
    assert response.status_code == 400
    assert "not available" in response.json()["error"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_outsider_cannot_send_to_a_restricted_model_over_the_socket(
    alice: AbstractUser, charlie: AbstractUser, secret_model: LLMModel, settings: Any
) -> None:
    settings.DEFAULT_MAX_TOKENS = 4
    conversation = await database_sync_to_async(conversation_create)(owner=charlie)
    socket, connected = await connect(charlie, conversation.id)
    assert connected
    await socket.send_json_to({"type": "send", "content": "Quarterly numbers?", "model": "finance-bot:latest"})
    refused, _ = await receive_until(socket, "error", timeout=10)
    assert "not available" in refused["error"]
    assert await socket.receive_nothing(timeout=0.5)
    await socket.disconnect()

    # Alice may: the same request works for her.
    conversation = await database_sync_to_async(conversation_create)(owner=alice)
    socket, _ = await connect(alice, conversation.id)
    await socket.send_json_to({"type": "send", "content": "Quarterly numbers?", "model": "finance-bot:latest"})
    done, _ = await receive_until(socket, "done", timeout=120)
    assert done["status"] == "complete"
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_withdrawn_access_applies_to_an_existing_conversation(alice: AbstractUser, secret_model: LLMModel, settings: Any) -> None:
    settings.DEFAULT_MAX_TOKENS = 4
    conversation = await database_sync_to_async(conversation_create)(owner=alice, model_name="finance-bot:latest")
    await database_sync_to_async(secret_model.allowed_users.clear)()
    socket, _ = await connect(alice, conversation.id)
    await socket.send_json_to({"type": "send", "content": "Hello", "model": "finance-bot:latest"})
    refused, _ = await receive_until(socket, "error", timeout=10)
    assert "not available" in refused["error"]
    await socket.disconnect()


@pytest.mark.django_db
def test_members_of_an_allowed_project_may_use_the_model_while_they_are_members(
    alice: AbstractUser, charlie: AbstractUser, admin_user: AbstractUser, secret_model: LLMModel
) -> None:
    project = project_create(creator=alice, name="<b>Finance</b>")
    other = project_create(creator=alice, name="Marketing")
    client = Client()
    client.force_login(admin_user)
    page = client.get(f"/admin/models/{secret_model.id}/access/")
    assert page.status_code == 200 and b"&lt;b&gt;Finance&lt;/b&gt;" in page.content and b"<b>Finance" not in page.content
    response = client.post(
        f"/admin/models/{secret_model.id}/access/", {"access": "restricted", "users": [alice.pk], "projects": [str(project.pk)]}
    )
    assert response.status_code == 302
    assert list(secret_model.allowed_projects.all()) == [project]
    assert AdminAction.objects.filter(action="model.access").order_by("-pk")[0].details["projects"] == [str(project.pk)]

    assert "finance-bot:latest" not in page_models(charlie)
    member_add(project=other, user=charlie, role="editor")  # a project that is not allowed
    assert "finance-bot:latest" not in page_models(charlie)
    member_add(project=project, user=charlie, role="viewer")
    assert "finance-bot:latest" in page_models(charlie)
    assert page_models(charlie).count("finance-bot:latest") == 1
    project_leave(project=project, user=charlie)
    assert "finance-bot:latest" not in page_models(charlie)

    # Back to everyone: the project list is cleared with the user list.
    client.post(f"/admin/models/{secret_model.id}/access/", {"access": "everyone", "projects": [str(project.pk)]})
    assert not secret_model.allowed_projects.exists() and not Project.objects.filter(allowed_models=secret_model).exists()


# --- The admin page is for staff ---------------------------------------------------------------


ADMIN_URLS = [
    ("get", "/admin/models/"),
    ("get", "/admin/models/table/"),
    ("get", "/admin/models/create/"),
    ("post", "/admin/models/pull/"),
    ("post", "/admin/models/estimate/"),
    ("post", "/admin/models/{id}/default/"),
    ("post", "/admin/models/{id}/delete/"),
    ("post", "/admin/models/{id}/copy/"),
    ("get", "/admin/models/{id}/access/"),
    ("post", "/admin/models/endpoints/"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "url"), ADMIN_URLS)
def test_ordinary_users_get_not_found_from_every_admin_page(alice: AbstractUser, smollm: LLMModel, method: str, url: str) -> None:
    client = Client()
    client.force_login(alice)
    response = getattr(client, method)(url.format(id=smollm.id), {"source": "http://example.com/x.gguf", "destination": "x"})
    assert response.status_code == 404
    assert b"finance" not in response.content and b"Pull a model" not in response.content
    assert LLMModel.objects.count() == 1 and LLMModel.objects.get().is_default == smollm.is_default
    assert not AdminAction.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "url"), ADMIN_URLS[:3])
def test_anonymous_visitors_are_sent_to_login(smollm: LLMModel, method: str, url: str) -> None:
    response = getattr(Client(), method)(url.format(id=smollm.id))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_only_staff_may_open_the_admin_socket(alice: AbstractUser, admin_user: AbstractUser) -> None:
    _socket, connected = await admin_socket(alice)
    assert not connected
    _socket, connected = await admin_socket(None)
    assert not connected
    socket, connected = await admin_socket(admin_user)
    assert connected
    await socket.disconnect()
