"""The chat pages and JSON actions over HTTP: ownership, anonymous visitors, bad input."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import AbstractUser
from django.test import Client

from chat.models import Conversation, Message, Role
from chat.services import conversation_create
from tests.factories import add_messages
from models_admin.models import LLMModel

pytestmark = pytest.mark.django_db


@pytest.fixture
def alices_chat(alice: AbstractUser, smollm: LLMModel) -> Conversation:
    conversation = conversation_create(owner=alice, title="Alice's secret plans")
    add_messages(conversation, (Role.USER, "the launch date is friday"))
    return conversation


def client_for(user: AbstractUser) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_anonymous_visitor_is_sent_to_login(alices_chat: Conversation) -> None:
    for url in ("/", f"/c/{alices_chat.id}/"):
        response = Client().get(url, HTTP_ACCEPT="text/html")
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_owner_sees_her_conversation(alice: AbstractUser, alices_chat: Conversation) -> None:
    response = client_for(alice).get(f"/c/{alices_chat.id}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Alice&#x27;s secret plans" in page or "Alice's secret plans" in page
    assert "the launch date is friday" in page


def test_outsider_cannot_list_open_rename_delete_or_stop(bob: AbstractUser, alices_chat: Conversation) -> None:
    bob_client = client_for(bob)
    home = bob_client.get("/", HTTP_ACCEPT="text/html").content.decode()
    assert str(alices_chat.id) not in home and "secret plans" not in home
    page = bob_client.get(f"/c/{alices_chat.id}/")
    assert page.status_code == 404 and b"launch date" not in page.content
    for action in ("rename", "delete", "stop"):
        response = bob_client.post(
            f"/c/{alices_chat.id}/{action}/", data=json.dumps({"title": "pwned"}), content_type="application/json"
        )
        assert response.status_code == 404, action
        assert b"secret" not in response.content
    alices_chat.refresh_from_db()
    assert alices_chat.title == "Alice's secret plans"


def test_create_rename_delete_round_trip(alice: AbstractUser, smollm: LLMModel) -> None:
    client = client_for(alice)
    created = client.post("/c/new/", data=json.dumps({"model": "smollm2:135m"}), content_type="application/json")
    assert created.status_code == 201
    conversation_id = created.json()["id"]
    assert Conversation.objects.get(pk=conversation_id).model == smollm
    renamed = client.post(
        f"/c/{conversation_id}/rename/", data=json.dumps({"title": "  Quarterly   report "}), content_type="application/json"
    )
    assert renamed.json()["title"] == "Quarterly report"
    assert client.post(f"/c/{conversation_id}/delete/").status_code == 204
    assert not Conversation.objects.filter(pk=conversation_id).exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "malformed"),
        ('{"model": 42}', "malformed"),
        ('{"model": "no-such-model"}', "not available"),
    ],
)
def test_bad_create_requests_get_a_clear_error(alice: AbstractUser, smollm: LLMModel, body: str, message: str) -> None:
    response = client_for(alice).post("/c/new/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not Conversation.objects.exists()


def test_empty_title_is_refused(alice: AbstractUser, alices_chat: Conversation) -> None:
    response = client_for(alice).post(
        f"/c/{alices_chat.id}/rename/", data=json.dumps({"title": "   "}), content_type="application/json"
    )
    assert response.status_code == 400
    alices_chat.refresh_from_db()
    assert alices_chat.title == "Alice's secret plans"


def test_pages_send_a_strict_content_security_policy(alice: AbstractUser, alices_chat: Conversation) -> None:
    response = client_for(alice).get(f"/c/{alices_chat.id}/")
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    page = response.content.decode()
    assert "http://" not in page.replace("http://testserver", "") and "https://" not in page


def test_embedding_only_models_are_not_offered_for_chat(alice: AbstractUser, smollm: LLMModel) -> None:
    from models_admin.services.registry import bundled_embedding_model_install

    embedder = bundled_embedding_model_install()
    assert embedder.capabilities == ["embedding"]
    page = client_for(alice).get("/", HTTP_ACCEPT="text/html")
    offered = [m["name"] for m in page.context["page_data"]["models"]]
    assert "smollm2:135m" in offered and embedder.full_name not in offered
