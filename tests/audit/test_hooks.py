"""Each audited action writes exactly one entry, with who, what and the client's address:
API keys, shares with colleagues, snapshot links, data export and import, admin actions."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from accounts.models import ApiKey
from audit.models import AuditEntry
from chat.models import Conversation, Role, ShareLink
from tests.factories import add_messages

pytestmark = pytest.mark.django_db
ADDRESS = "198.51.100.20"


def client_for(user: User) -> Client:
    client = Client(REMOTE_ADDR=ADDRESS)
    client.force_login(user)
    return client


def recorded(prefix: str) -> list[tuple[Any, ...]]:
    return [
        (e.action, e.actor_id, e.address, e.target, e.detail)
        for e in AuditEntry.objects.filter(action__startswith=prefix).order_by("id")
    ]


@pytest.fixture
def alices_chat(alice: User) -> Conversation:
    conversation = Conversation.objects.create(owner=alice, title="Lighthouse budget")
    add_messages(conversation, (Role.USER, "How many bulbs?"), (Role.ASSISTANT, "Forty."))
    return conversation


def test_creating_and_revoking_a_key_is_recorded(alice: User) -> None:
    client = client_for(alice)
    assert client.post("/settings/keys/", {"name": "laptop"}).status_code == 302
    key = ApiKey.objects.get(user=alice)
    assert client.post(f"/settings/keys/{key.pk}/revoke/").status_code == 302
    assert client.post(f"/settings/keys/{key.pk}/revoke/").status_code == 404  # already revoked: no second entry
    target = f"laptop ({key.prefix}…)"
    assert recorded("apikey.") == [
        ("apikey.created", alice.pk, ADDRESS, target, {"key": key.pk, "owner": "alice"}),
        ("apikey.revoked", alice.pk, ADDRESS, target, {"key": key.pk, "owner": "alice"}),
    ]
    assert key.hashed_key not in json.dumps(recorded("apikey."))


def test_sharing_and_unsharing_is_recorded(alice: User, bob: User, alices_chat: Conversation) -> None:
    client = client_for(alice)
    url = f"/c/{alices_chat.id}/shares/"
    assert client.post(url, {"username": "bob", "permission": "read"}, content_type="application/json").status_code == 200
    assert client.post(url, {"username": "bob", "permission": "write"}, content_type="application/json").status_code == 200
    assert client.post(f"{url}{bob.pk}/remove/").status_code == 200
    assert client.post(f"{url}{bob.pk}/remove/").status_code == 200  # nothing left to remove: no entry
    target = f"conversation {alices_chat.id}"
    assert recorded("share.") == [
        ("share.created", alice.pk, ADDRESS, target, {"with": "bob", "permission": "read"}),
        ("share.changed", alice.pk, ADDRESS, target, {"with": "bob", "permission": "write"}),
        ("share.revoked", alice.pk, ADDRESS, target, {"with": "bob"}),
    ]


def test_creating_and_revoking_a_link_is_recorded(alice: User, alices_chat: Conversation) -> None:
    client = client_for(alice)
    created = client.post(f"/c/{alices_chat.id}/links/")
    assert created.status_code == 201
    link = ShareLink.objects.get(pk=created.json()["id"])
    assert client.post(f"/c/{alices_chat.id}/links/{link.pk}/revoke/").status_code == 200
    target = f"conversation {alices_chat.id}"
    entries = recorded("sharelink.")
    assert entries == [
        ("sharelink.created", alice.pk, ADDRESS, target, {"link": link.pk, "key": link.key}),
        ("sharelink.revoked", alice.pk, ADDRESS, target, {"link": link.pk}),
    ]
    secret = created.json()["url"].rstrip("/").rsplit(".", 1)[1]
    assert secret not in json.dumps(entries)  # the link's secret is never recorded


def test_an_outsider_changes_nothing_and_nothing_is_recorded(bob: User, alices_chat: Conversation) -> None:
    response = client_for(bob).post(f"/c/{alices_chat.id}/links/")
    assert response.status_code == 404
    assert recorded("sharelink.") == []


def test_exports_and_imports_are_recorded(alice: User, alices_chat: Conversation) -> None:
    client = client_for(alice)
    assert client.get(f"/c/{alices_chat.id}/export.md").status_code == 200
    exported = client.get("/export/all.zip")
    assert exported.status_code == 200
    archive = b"".join(exported.streaming_content)  # type: ignore[attr-defined]
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("all.zip", archive, content_type="application/zip")
    assert client.post("/import/", {"file": upload}).status_code == 302
    assert recorded("data.") == [
        ("data.exported", alice.pk, ADDRESS, f"conversation {alices_chat.id}", {"what": "conversation", "format": "md"}),
        ("data.exported", alice.pk, ADDRESS, "alice", {"what": "conversations", "conversations": 1}),
        ("data.imported", alice.pk, ADDRESS, "alice", {"conversations": 1}),
    ]


def test_an_admin_action_on_models_is_in_the_audit_log_with_its_address(admin_user: User, smollm: Any) -> None:
    from models_admin.models import AdminAction

    response = client_for(admin_user).post(f"/admin/models/{smollm.pk}/context/", {"context_length": "2048"})
    assert response.status_code == 302
    assert recorded("model.") == [("model.context", admin_user.pk, ADDRESS, smollm.full_name, {"num_ctx": 2048})]
    assert AdminAction.objects.filter(action="model.context").count() == 1  # the models page's own history too
