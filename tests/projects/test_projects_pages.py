"""The project pages over HTTP: each persona sees and does exactly what its role allows.

alice owns the project, bob edits, charlie views, dave is an outsider: he gets the 404 page
everywhere and nothing changes.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from chat.models import Conversation
from chat.services import conversation_create
from models_admin.models import LLMModel
from models_admin.services.registry import model_access_set, model_copy
from projects.models import Membership, Project, ProjectRole
from projects.services import project_create

from .conftest import client_for

FORBIDDEN_OWNER = "This needs the role “Owner” in this project; your role is"


def roles(project: Project) -> dict[str, str]:
    return dict(Membership.objects.filter(project=project).values_list("user__username", "role"))


def snapshot(project: Project) -> tuple[object, ...]:
    """Everything a refused request must leave as it was."""
    project.refresh_from_db()
    return (project.name, project.description, project.instructions, project.default_model_id, sorted(roles(project).items()),
            Project.objects.count(), Conversation.objects.count())


def pages(project: Project) -> list[str]:
    return [f"/p/{project.id}/", f"/p/{project.id}/settings/", f"/p/{project.id}/delete/", f"/p/{project.id}/leave/"]


def posts(project: Project, alice: User, bob: User) -> list[tuple[str, dict[str, object]]]:
    return [
        (f"/p/{project.id}/settings/", {"name": "Hijacked", "description": "", "instructions": ""}),
        (f"/p/{project.id}/members/", {"who": "dave", "role": "owner"}),
        (f"/p/{project.id}/members/{alice.pk}/role/", {"role": "viewer"}),
        (f"/p/{project.id}/members/{bob.pk}/remove/", {}),
        (f"/p/{project.id}/transfer/", {"member": bob.pk}),
        (f"/p/{project.id}/delete/", {}),
    ]


# --- Who may open what ------------------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_login(project: Project) -> None:
    for url in ["/p/", "/p/new/", *pages(project)]:
        response = client_for(None).get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url


@pytest.mark.django_db
def test_every_member_sees_the_project_page(alice: User, bob: User, charlie: User, project: Project) -> None:
    for user, role in [(alice, "Owner"), (bob, "Editor"), (charlie, "Viewer")]:
        response = client_for(user).get(f"/p/{project.id}/")
        assert response.status_code == 200
        assert response.context["role"] == role.lower()
        body = response.content.decode()
        assert "Quarterly report" in body and "Numbers for Q3." in body and "Answer in French." in body
        assert ('id="new-conversation"' in body) == (user != charlie)
        assert ('id="project-settings"' in body) == (user == alice)
        assert 'id="project-leave"' in body
        assert [m.user.username for m in response.context["members"]] == ["alice", "bob", "charlie"]


@pytest.mark.django_db
def test_outsider_gets_not_found_everywhere_and_nothing_changes(
    alice: User, bob: User, dave: User, project: Project
) -> None:
    before = snapshot(project)
    client = client_for(dave)
    for url in pages(project):
        response = client.get(url)
        assert response.status_code == 404, url
        assert b"Quarterly" not in response.content
    for url, data in posts(project, alice, bob):
        response = client.post(url, data)
        assert response.status_code == 404, url
        assert b"Quarterly" not in response.content
    assert snapshot(project) == before
    assert b"Quarterly" not in client.get("/p/").content


@pytest.mark.django_db
def test_ids_that_are_not_projects_get_not_found(alice: User, project: Project) -> None:
    client = client_for(alice)
    for project_id in ["not-a-uuid", "1", str(uuid.uuid4()), f"{project.id}x"]:
        assert client.get(f"/p/{project_id}/").status_code == 404
        assert client.post(f"/p/{project_id}/leave/").status_code == 404
    # A member id that is not a member of this project: the same 404.
    assert client.post(f"/p/{project.id}/members/999999/remove/").status_code == 404


@pytest.mark.django_db
def test_editors_and_viewers_get_forbidden_from_owner_pages_and_nothing_changes(
    alice: User, bob: User, charlie: User, project: Project
) -> None:
    before = snapshot(project)
    for user, role in [(bob, "Editor"), (charlie, "Viewer")]:
        client = client_for(user)
        for url in [f"/p/{project.id}/settings/", f"/p/{project.id}/delete/"]:
            response = client.get(url)
            assert response.status_code == 403, url
            assert f"{FORBIDDEN_OWNER} “{role}”.".encode() in response.content
        for url, data in posts(project, alice, bob):
            assert client.post(url, data).status_code == 403, url
    assert snapshot(project) == before


# --- My projects, new projects -------------------------------------------------------------------


@pytest.mark.django_db
def test_project_list_shows_my_role_conversation_count_and_activity(
    alice: User, bob: User, charlie: User, dave: User, project: Project, smollm: LLMModel
) -> None:
    conversation_create(owner=bob, project=project)
    conversation_create(owner=alice, project=project)
    conversation_create(owner=charlie)  # a private chat: not the project's
    response = client_for(charlie).get("/p/")
    assert response.status_code == 200
    [row] = response.context["page"].object_list
    assert (row.name, row.my_role, row.conversation_count) == ("Quarterly report", "viewer", 2)
    assert timezone.now() - row.last_activity < timedelta(minutes=1)
    assert b"Viewer" in response.content and b"Create project" in response.content
    assert list(client_for(dave).get("/p/").context["page"].object_list) == []


@pytest.mark.django_db
def test_create_redirects_and_a_reload_does_not_create_again(alice: User, smollm: LLMModel) -> None:
    client = client_for(alice)
    data = {"name": "Launch", "description": "The spring launch.", "instructions": "Be brief.", "default_model": smollm.pk}
    response = client.post("/p/new/", data)
    project = Project.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/p/{project.id}/"
    assert (project.name, project.instructions, project.default_model) == ("Launch", "Be brief.", smollm)
    assert roles(project) == {"alice": "owner"}
    page = client.get(response["Location"])
    assert page.status_code == 200 and b"The project \xe2\x80\x9cLaunch\xe2\x80\x9d was created." in page.content
    client.get(response["Location"])  # the reload is a GET: nothing new
    assert Project.objects.count() == 1


@pytest.mark.django_db
def test_create_refuses_an_empty_name_and_a_model_the_creator_may_not_use(
    alice: User, charlie: User, admin_user: User, smollm: LLMModel
) -> None:
    response = client_for(alice).post("/p/new/", {"name": "  ", "description": "", "instructions": ""})
    assert response.status_code == 400 and b"This field is required." in response.content
    secret = model_copy(actor=admin_user, source=smollm.full_name, destination="finance-bot:latest")
    model_access_set(actor=admin_user, model=secret, access="restricted", user_ids=[alice.pk])
    page = client_for(charlie).get("/p/new/")
    assert page.status_code == 200 and b"finance-bot" not in page.content and b"SmolLM2" in page.content
    response = client_for(charlie).post("/p/new/", {"name": "Leak", "default_model": secret.pk})
    assert response.status_code == 400
    assert b"Select a valid choice." in response.content
    assert not Project.objects.exists()


# --- The project page's conversations ---------------------------------------------------------


@pytest.mark.django_db
def test_conversations_are_listed_newest_first_with_author_and_age(
    alice: User, bob: User, charlie: User, project: Project, smollm: LLMModel
) -> None:
    old = conversation_create(owner=bob, project=project, title="Old forecast")
    new = conversation_create(owner=alice, project=project, title="New forecast")
    Conversation.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(minutes=3))
    conversation_create(owner=charlie, title="Charlie's private chat")
    response = client_for(charlie).get(f"/p/{project.id}/")
    assert [c.id for c in response.context["page"].object_list] == [new.id, old.id]
    body = response.content.decode()
    assert f'href="/c/{old.id}/"' in body and "Old forecast" in body and "3\xa0minutes ago" in body
    assert "Charlie&#x27;s private chat" not in body and "Charlie's private chat" not in body


@pytest.mark.django_db
def test_conversations_are_paginated_fifty_a_page(alice: User, project: Project, smollm: LLMModel) -> None:
    chats = Conversation.objects.bulk_create(Conversation(owner=alice, project=project, title=f"Chat {i}") for i in range(51))
    for i, chat in enumerate(chats):  # auto_now_add stamps them all alike on create: age them after
        chat.updated_at = timezone.now() - timedelta(minutes=i)
    Conversation.objects.bulk_update(chats, ["updated_at"])
    client = client_for(alice)
    first = client.get(f"/p/{project.id}/")
    assert len(first.context["page"].object_list) == 50 and b"Page 1 of 2" in first.content
    second = client.get(f"/p/{project.id}/?page=2")
    assert [c.title for c in second.context["page"].object_list] == ["Chat 50"]
    assert client.get(f"/p/{project.id}/?page=zzz").status_code == 200  # a bad page number: the first page


@pytest.mark.django_db
def test_editors_may_start_a_conversation_in_the_project_and_viewers_may_not(
    bob: User, charlie: User, project: Project, smollm: LLMModel
) -> None:
    created = client_for(bob).post("/c/new/", {"project": str(project.id)}, content_type="application/json")
    assert created.status_code == 201
    conversation = Conversation.objects.get(pk=created.json()["id"])
    assert conversation.project == project and conversation.owner == bob
    refused = client_for(charlie).post("/c/new/", {"project": str(project.id)}, content_type="application/json")
    assert refused.status_code == 400
    assert Conversation.objects.count() == 1


# --- Markup typed by people is text --------------------------------------------------------------


@pytest.mark.django_db
def test_names_descriptions_and_instructions_render_escaped(alice: User, bob: User, smollm: LLMModel) -> None:
    script = "<script>alert(1)</script>"
    client = client_for(alice)
    response = client.post("/p/new/", {"name": script, "description": f"<b>{script}</b>", "instructions": script})
    project = Project.objects.get()
    assert response.status_code == 302
    client.post(f"/p/{project.id}/members/", {"who": "bob", "role": "editor"})
    bob.username = "<img src=x onerror=alert(2)>"
    bob.save(update_fields=["username"])
    conversation_create(owner=alice, project=project, title=script)
    for url in ["/p/", *pages(project)]:
        body = client.get(url).content.decode()
        assert "<script>alert" not in body and "<img src=x" not in body and "<b>" not in body, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body, url
    detail = client.get(f"/p/{project.id}/").content.decode()
    assert "&lt;img src=x onerror=alert(2)&gt;" in detail


# --- Settings: details and members --------------------------------------------------------------


@pytest.mark.django_db
def test_owner_edits_the_details(alice: User, project: Project, smollm: LLMModel) -> None:
    client = client_for(alice)
    assert client.get(f"/p/{project.id}/settings/").status_code == 200
    response = client.post(
        f"/p/{project.id}/settings/",
        {"name": "Q4 report", "description": "Numbers for Q4.", "instructions": "Answer in German.", "default_model": smollm.pk},
    )
    assert response.status_code == 302 and response["Location"] == f"/p/{project.id}/settings/"
    project.refresh_from_db()
    assert (project.name, project.instructions, project.default_model) == ("Q4 report", "Answer in German.", smollm)
    refused = client.post(f"/p/{project.id}/settings/", {"name": "", "description": "", "instructions": ""})
    assert refused.status_code == 400 and b"This field is required." in refused.content
    project.refresh_from_db()
    assert project.name == "Q4 report"


@pytest.mark.django_db
def test_owner_adds_a_colleague_by_username_or_email(alice: User, dave: User, project: Project) -> None:
    dave.email = "dave@example.com"
    dave.save(update_fields=["email"])
    client = client_for(alice)
    response = client.post(f"/p/{project.id}/members/", {"who": "DAVE@example.com", "role": "viewer"})
    assert response.status_code == 302 and response["Location"] == f"/p/{project.id}/settings/"
    assert roles(project)["dave"] == "viewer"
    assert client_for(dave).get(f"/p/{project.id}/").status_code == 200

    again = client.post(f"/p/{project.id}/members/", {"who": "dave", "role": "editor"})
    assert again.status_code == 400 and b"dave is already a member of this project." in again.content
    unknown = client.post(f"/p/{project.id}/members/", {"who": "erin", "role": "editor"})
    assert unknown.status_code == 400
    assert "Nobody here is called “erin”. Check the username or email address.".encode() in unknown.content
    bad_role = client.post(f"/p/{project.id}/members/", {"who": "dave", "role": "admin"})
    assert bad_role.status_code == 400
    assert roles(project)["dave"] == "viewer"


@pytest.mark.django_db
def test_owner_changes_a_role_and_removes_a_member(alice: User, bob: User, charlie: User, project: Project) -> None:
    client = client_for(alice)
    response = client.post(f"/p/{project.id}/members/{charlie.pk}/role/", {"role": "editor"})
    assert response.status_code == 302
    assert roles(project)["charlie"] == "editor"
    response = client.post(f"/p/{project.id}/members/{bob.pk}/remove/")
    assert response.status_code == 302 and response["Location"] == f"/p/{project.id}/settings/"
    assert "bob" not in roles(project)
    assert client_for(bob).get(f"/p/{project.id}/").status_code == 404


@pytest.mark.django_db
def test_last_owner_cannot_be_demoted_or_removed(alice: User, project: Project) -> None:
    client = client_for(alice)
    for url, data in [(f"/p/{project.id}/members/{alice.pk}/role/", {"role": "editor"}), (f"/p/{project.id}/members/{alice.pk}/remove/", {})]:
        response = client.post(url, data)
        assert response.status_code == 400
        assert b"A project needs an owner. Transfer ownership to another member first" in response.content
    assert roles(project)["alice"] == "owner"


@pytest.mark.django_db
def test_transfer_ownership(alice: User, bob: User, project: Project) -> None:
    client = client_for(alice)
    response = client.post(f"/p/{project.id}/transfer/", {"member": bob.pk})
    assert response.status_code == 302 and response["Location"] == f"/p/{project.id}/"
    assert roles(project) == {"alice": "editor", "bob": "owner", "charlie": "viewer"}
    assert client.get(f"/p/{project.id}/settings/").status_code == 403
    assert client_for(bob).get(f"/p/{project.id}/settings/").status_code == 200
    # Only members can be picked: an outsider's id is not a valid choice.
    refused = client_for(bob).post(f"/p/{project.id}/transfer/", {"member": 999999})
    assert refused.status_code == 400
    assert roles(project)["bob"] == "owner"


# --- Leave and delete ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_any_member_may_leave_after_confirming(bob: User, charlie: User, project: Project) -> None:
    client = client_for(charlie)
    confirm = client.get(f"/p/{project.id}/leave/")
    assert confirm.status_code == 200 and b"Leave \xe2\x80\x9cQuarterly report\xe2\x80\x9d?" in confirm.content
    response = client.post(f"/p/{project.id}/leave/")
    assert response.status_code == 302 and response["Location"] == "/p/"
    assert "charlie" not in roles(project)
    assert client.get(f"/p/{project.id}/").status_code == 404
    assert client.post(f"/p/{project.id}/leave/").status_code == 404


@pytest.mark.django_db
def test_last_owner_cannot_leave(alice: User, project: Project) -> None:
    response = client_for(alice).post(f"/p/{project.id}/leave/")
    assert response.status_code == 400
    assert b"A project needs an owner. Transfer ownership to another member first, or delete the project." in response.content
    assert roles(project)["alice"] == "owner"


@pytest.mark.django_db
def test_delete_asks_first_and_keeps_the_conversations(
    alice: User, bob: User, project: Project, smollm: LLMModel
) -> None:
    conversation = conversation_create(owner=bob, project=project, title="Forecast")
    client = client_for(alice)
    confirm = client.get(f"/p/{project.id}/delete/")
    assert confirm.status_code == 200
    assert b"Its 1 conversation is not deleted: it goes back to its author as a private chat" in confirm.content
    assert Project.objects.filter(pk=project.pk).exists()
    response = client.post(f"/p/{project.id}/delete/")
    assert response.status_code == 302 and response["Location"] == "/p/"
    assert not Project.objects.exists() and not Membership.objects.exists()
    conversation.refresh_from_db()
    assert conversation.project_id is None and conversation.owner == bob
    assert client_for(bob).get(f"/c/{conversation.id}/", HTTP_ACCEPT="text/html").status_code == 200
    assert client.get(f"/c/{conversation.id}/", HTTP_ACCEPT="text/html").status_code == 404
    assert client.get(f"/p/{project.id}/").status_code == 404


@pytest.mark.django_db
def test_roles_enum_matches_what_the_pages_offer(alice: User, project: Project) -> None:
    response = client_for(alice).get(f"/p/{project.id}/settings/")
    assert [value for value, _label in response.context["roles"]] == [r.value for r in ProjectRole]


@pytest.mark.django_db
def test_django_admin_lists_projects_as_text_and_changes_nothing(admin_user: User, alice: User) -> None:
    project = project_create(creator=alice, name="<script>alert(1)</script>", instructions="<b>x</b>")
    client = client_for(admin_user)
    listing = client.get("/admin/projects/project/")
    assert listing.status_code == 200
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in listing.content and b"<script>alert(1)" not in listing.content
    detail = client.get(f"/admin/projects/project/{project.pk}/change/")
    assert detail.status_code == 200 and b"&lt;b&gt;x&lt;/b&gt;" in detail.content
    assert client.get("/admin/projects/project/add/").status_code == 403
    assert client.get("/admin/projects/membership/").status_code == 200
