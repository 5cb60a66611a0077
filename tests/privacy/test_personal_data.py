"""Personal data: everyone downloads all of theirs (and only theirs, never a key's secret) and
deletes their account; admins do both for anyone; nobody else can."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest
from django.contrib.auth.models import User
from django.test import Client

from accounts.models import ApiKey, UsageRecord, UsageSource
from accounts.services import api_key_create
from audit.models import AuditEntry
from audit.services import audit_record
from chat.models import Conversation, ConversationShare, Message, Role
from projects.models import Membership, Project, ProjectRole
from tests.conftest import PASSWORD, make_user
from tests.factories import add_messages

pytestmark = pytest.mark.django_db
ADDRESS = "198.51.100.30"


def client_for(user: User) -> Client:
    client = Client(REMOTE_ADDR=ADDRESS)
    client.force_login(user)
    return client


def _usage(user: User, model: str) -> None:
    UsageRecord.objects.create(user=user, model_name=model, source=UsageSource.WEB, prompt_tokens=3, completion_tokens=4)


@pytest.fixture
def world(alice: User, bob: User) -> dict[str, object]:
    """Alice and Bob each have a conversation, a key and usage; Alice shares hers with Bob,
    Bob wrote in it; Alice alone owns one project (Bob is in it) and another nobody else is in."""
    mine = Conversation.objects.create(owner=alice, title="Alice's plan")
    add_messages(mine, (Role.USER, "alice secret question"), (Role.ASSISTANT, "an answer"))
    ConversationShare.objects.create(conversation=mine, user=bob, shared_by=alice)
    Message.objects.create(conversation=mine, role=Role.USER, content="bob was here", author=bob)
    theirs = Conversation.objects.create(owner=bob, title="Bob's notes")
    add_messages(theirs, (Role.USER, "bob private question"), (Role.ASSISTANT, "bob answer"))
    _key, alice_secret = api_key_create(user=alice, name="alice laptop")
    _key, bob_secret = api_key_create(user=bob, name="bob phone")
    _usage(alice, "smollm2:135m")
    _usage(bob, "bob-model")
    team = Project.objects.create(name="Team", created_by=alice)
    Membership.objects.create(project=team, user=alice, role=ProjectRole.OWNER)
    Membership.objects.create(project=team, user=bob, role=ProjectRole.VIEWER)
    solo = Project.objects.create(name="Solo", created_by=alice)
    Membership.objects.create(project=solo, user=alice, role=ProjectRole.OWNER)
    return {"mine": mine, "theirs": theirs, "alice_secret": alice_secret, "bob_secret": bob_secret,
            "team": team, "solo": solo}


def _zip(response: object) -> zipfile.ZipFile:
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    return zipfile.ZipFile(io.BytesIO(body))


def _everything(archive: zipfile.ZipFile) -> str:
    return "".join(archive.read(name).decode() for name in archive.namelist())


# --- Download all my data --------------------------------------------------------------------------


def test_the_zip_holds_all_my_data_and_nothing_else(alice: User, world: dict[str, object]) -> None:
    response = client_for(alice).get("/settings/data/all.zip")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip" and "no-store" in response["Cache-Control"]
    archive = _zip(response)
    mine = world["mine"]
    assert isinstance(mine, Conversation)
    assert sorted(archive.namelist()) == sorted([
        "account.json", "activity.csv", "api_keys.json", "conversations/index.json",
        f"conversations/{mine.id}.json", "usage.csv",
    ])
    conversation = json.loads(archive.read(f"conversations/{mine.id}.json"))
    assert [m["content"] for m in conversation["messages"]][:2] == ["alice secret question", "an answer"]
    usage = list(csv.reader(io.StringIO(archive.read("usage.csv").decode())))
    assert usage[0] == ["time", "model", "interface", "prompt_tokens", "completion_tokens", "outcome"]
    assert [row[1:] for row in usage[1:]] == [["smollm2:135m", "web", "3", "4", "complete"]]
    keys = json.loads(archive.read("api_keys.json"))
    assert [(k["name"], sorted(k)) for k in keys] == [
        ("alice laptop", ["created_at", "last_used_at", "name", "prefix", "revoked_at"])
    ]
    account = json.loads(archive.read("account.json"))
    assert (account["username"], sorted(p["name"] for p in account["projects"])) == ("alice", ["Solo", "Team"])
    everything = _everything(archive)
    assert str(world["alice_secret"]) not in everything  # never a key's secret
    assert ApiKey.objects.get(user=alice).hashed_key not in everything
    for other in ["bob private question", "bob phone", "bob-model", str(world["bob_secret"])]:
        assert other not in everything
    entry = AuditEntry.objects.get(action="data.exported")
    assert (entry.actor_id, entry.target, entry.address) == (alice.pk, "alice", ADDRESS)
    assert entry.detail == {"what": "all", "conversations": 1, "usage_records": 1, "api_keys": 1}


def test_the_data_page_offers_both(alice: User) -> None:
    page = client_for(alice).get("/settings/data/")
    assert page.status_code == 200
    assert b'id="export-personal"' in page.content and b'id="delete-account-form"' in page.content


# --- Delete my account ------------------------------------------------------------------------------


def test_deleting_my_account_needs_my_password(alice: User, world: dict[str, object]) -> None:
    client = client_for(alice)
    response = client.post("/settings/data/delete-account/", {"password": "not it"})
    assert response.status_code == 400
    assert "This is not your password." in response.content.decode()
    assert User.objects.filter(username="alice").exists()
    assert not AuditEntry.objects.filter(action="account.deleted").exists()


def test_deleting_my_account_removes_my_rows_and_leaves_bobs(alice: User, bob: User, world: dict[str, object]) -> None:
    alice_id = alice.pk
    client = client_for(alice)
    response = client.post("/settings/data/delete-account/", {"password": PASSWORD, "is_staff": "1"})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert not User.objects.filter(pk=alice_id).exists()
    assert not Conversation.objects.filter(owner_id=alice_id).exists()
    assert not Message.objects.filter(content="bob was here").exists()  # it was in Alice's conversation
    assert not ApiKey.objects.filter(user_id=alice_id).exists()
    assert not UsageRecord.objects.filter(user_id=alice_id).exists()
    assert not Membership.objects.filter(user_id=alice_id).exists()
    # Bob's things are untouched, and the project Alice alone owned is now his.
    assert list(Conversation.objects.values_list("title", flat=True)) == ["Bob's notes"]
    assert Message.objects.filter(conversation=world["theirs"]).count() == 2
    assert ApiKey.objects.filter(user=bob).count() == 1 and UsageRecord.objects.filter(user=bob).count() == 1
    assert Membership.objects.get(project=world["team"], user=bob).role == ProjectRole.OWNER
    assert not Project.objects.filter(name="Solo").exists()  # nobody else was in it
    entry = AuditEntry.objects.get(action="account.deleted")
    assert (entry.actor_id, entry.actor_name, entry.target, entry.address) == (None, "alice", "alice", ADDRESS)
    assert entry.detail == {"conversations": 1, "api_keys": 1, "usage_records": 1, "projects_handed_over": 1,
                            "projects_deleted": 1, "by": "self"}
    assert client.get("/settings/data/").status_code == 302  # signed out


def test_an_account_without_a_password_confirms_with_its_username(alice: User) -> None:
    alice.set_unusable_password()
    alice.save(update_fields=["password"])
    client = client_for(alice)
    assert client.post("/settings/data/delete-account/", {"confirm": "bob"}).status_code == 400
    assert client.post("/settings/data/delete-account/", {"confirm": "alice"}).status_code == 302
    assert not User.objects.filter(username="alice").exists()


def test_the_only_admin_cannot_delete_their_account(admin_user: User) -> None:
    response = client_for(admin_user).post("/settings/data/delete-account/", {"password": PASSWORD})
    assert response.status_code == 400
    assert "only administrator" in response.content.decode()
    assert User.objects.filter(pk=admin_user.pk).exists()


# --- The admin versions ------------------------------------------------------------------------------


def test_an_admin_downloads_someones_data(admin_user: User, alice: User, world: dict[str, object]) -> None:
    response = client_for(admin_user).get(f"/admin/users/{alice.pk}/data.zip")
    assert response.status_code == 200
    archive = _zip(response)
    assert json.loads(archive.read("account.json"))["username"] == "alice"
    assert "bob private question" not in _everything(archive)
    entry = AuditEntry.objects.get(action="data.exported")
    assert (entry.actor_id, entry.target) == (admin_user.pk, "alice")


def test_an_admin_deletes_someones_account_after_typing_the_name(admin_user: User, alice: User, bob: User,
                                                               world: dict[str, object]) -> None:
    client = client_for(admin_user)
    page = client.get(f"/admin/users/{alice.pk}/delete/")
    assert page.status_code == 200 and b'id="admin-delete-form"' in page.content
    assert client.post(f"/admin/users/{alice.pk}/delete/", {"confirm": "alic"}).status_code == 400
    assert User.objects.filter(pk=alice.pk).exists()
    response = client.post(f"/admin/users/{alice.pk}/delete/", {"confirm": "alice"})
    assert response.status_code == 302 and response["Location"] == "/admin/users/"
    assert not User.objects.filter(username="alice").exists()
    assert User.objects.filter(username="bob").exists() and Conversation.objects.filter(owner=bob).count() == 1
    entry = AuditEntry.objects.get(action="account.deleted")
    assert (entry.actor_id, entry.target, entry.detail["by"]) == (admin_user.pk, "alice", "admin")


def test_the_admin_versions_are_404_for_everyone_else(alice: User, bob: User, world: dict[str, object]) -> None:
    client = client_for(bob)
    assert client.get(f"/admin/users/{alice.pk}/data.zip").status_code == 404
    assert client.get(f"/admin/users/{alice.pk}/delete/").status_code == 404
    assert client.post(f"/admin/users/{alice.pk}/delete/", {"confirm": "alice"}).status_code == 404
    assert User.objects.filter(username="alice").exists()
    assert not AuditEntry.objects.filter(action__in=["data.exported", "account.deleted"]).exists()


def test_an_unknown_user_is_404_for_an_admin(admin_user: User) -> None:
    client = client_for(admin_user)
    assert client.get("/admin/users/999999/data.zip").status_code == 404
    assert client.post("/admin/users/999999/delete/", {"confirm": "x"}).status_code == 404


def test_another_admin_can_be_deleted_but_not_the_last_one(admin_user: User) -> None:
    other = make_user("second-admin", staff=True)
    client = client_for(admin_user)
    assert client.post(f"/admin/users/{other.pk}/delete/", {"confirm": "second-admin"}).status_code == 302
    response = client.post(f"/admin/users/{admin_user.pk}/delete/", {"confirm": "admin"})
    assert response.status_code == 400 and User.objects.filter(pk=admin_user.pk).exists()


def test_my_activity_is_in_my_zip_but_not_others(alice: User, bob: User) -> None:
    audit_record(actor=bob, action="share.created", target="bob's thing")
    archive = _zip(client_for(alice).get("/settings/data/all.zip"))
    activity = archive.read("activity.csv").decode()
    assert "signin.succeeded" in activity and "bob's thing" not in activity


# --- Admins reading conversations: off by default; when on, read only and audited --------------------


def test_admins_cannot_read_conversations_by_default(admin_user: User, world: dict[str, object]) -> None:
    mine = world["mine"]
    assert isinstance(mine, Conversation)
    client = client_for(admin_user)
    assert client.get(f"/admin/conversations/{mine.id}/").status_code == 404
    listing = client.get("/admin/chat/conversation/")
    assert listing.status_code == 200
    assert str(mine.id) in listing.content.decode()  # metadata: id, owner, counts, dates
    assert "alice secret question" not in listing.content.decode()
    assert "Alice&#x27;s plan" not in listing.content.decode()  # not even the title
    assert client.get(f"/admin/chat/conversation/{mine.id}/change/").status_code == 403
    assert client.post(f"/admin/chat/conversation/{mine.id}/delete/").status_code == 403
    assert Conversation.objects.filter(pk=mine.pk).exists()
    assert not AuditEntry.objects.filter(action="conversation.read_by_admin").exists()


def test_where_allowed_every_admin_read_is_audited(admin_user: User, alice: User, world: dict[str, object],
                                                   settings: object) -> None:
    settings.ADMIN_CAN_READ_CONVERSATIONS = True  # type: ignore[attr-defined]
    mine = world["mine"]
    assert isinstance(mine, Conversation)
    Message.objects.create(conversation=mine, role=Role.USER, content="<script>x</script>", author=alice,
                           parent_id=mine.current_leaf_id)
    Conversation.objects.filter(pk=mine.pk).update(current_leaf=Message.objects.latest("id"))
    client = client_for(admin_user)
    page = client.get(f"/admin/conversations/{mine.id}/")
    assert page.status_code == 200
    assert "alice secret question" in page.content.decode()
    assert "<script>x</script>" not in page.content.decode() and "&lt;script&gt;" in page.content.decode()
    assert client.get(f"/admin/conversations/{mine.id}/").status_code == 200
    entries = AuditEntry.objects.filter(action="conversation.read_by_admin")
    assert [(e.actor_id, e.target, e.detail) for e in entries] == [
        (admin_user.pk, f"conversation {mine.id}", {"owner": "alice"})
    ] * 2
    assert client_for(alice).get(f"/admin/conversations/{mine.id}/").status_code == 404
    assert client.get("/admin/conversations/not-a-uuid/").status_code == 404
