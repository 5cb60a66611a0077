"""Model access by group: members of an allowed group may use a restricted model, for as
long as they are members. The access page picks people and groups by name, never by listing
everyone."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AbstractUser, User
from django.test import Client

from directory.services import group_create, group_member_remove, group_members_add
from models_admin.models import Access, AdminAction, LLMModel
from models_admin.services.registry import model_copy

pytestmark = pytest.mark.django_db


def page_models(user: AbstractUser) -> list[str]:
    client = Client()
    client.force_login(user)
    response = client.get("/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    return [m["name"] for m in response.context["page_data"]["models"]]


@pytest.fixture
def finance_bot(admin_user: AbstractUser, smollm: LLMModel) -> LLMModel:
    return model_copy(actor=admin_user, source=smollm.full_name, destination="finance-bot:latest")


def test_members_of_an_allowed_group_may_use_the_model(
    admin_client: Client, admin_user: AbstractUser, alice: AbstractUser, bob: AbstractUser, charlie: AbstractUser, finance_bot: LLMModel
) -> None:
    finance = group_create(name="Finance", by=admin_user, address="")
    group_members_add(group=finance, users=[charlie], by=admin_user, address="")
    response = admin_client.post(
        f"/admin/models/{finance_bot.pk}/access/", {"access": "restricted", "add_users": "alice", "add_groups": "finance"}
    )
    assert response.status_code == 302
    finance_bot.refresh_from_db()
    assert finance_bot.access == Access.RESTRICTED and list(finance_bot.allowed_groups.all()) == [finance]
    assert AdminAction.objects.filter(action="model.access").latest("pk").details["groups"] == [finance.pk]

    assert "finance-bot:latest" in page_models(charlie)
    assert page_models(charlie).count("finance-bot:latest") == 1
    assert "finance-bot:latest" in page_models(alice)
    assert "finance-bot:latest" not in page_models(bob)
    group_member_remove(group=finance, user=charlie, by=admin_user, address="")
    assert "finance-bot:latest" not in page_models(charlie)

    # The page shows the selection as ticked boxes; unticking removes, the rest stays.
    page = admin_client.get(f"/admin/models/{finance_bot.pk}/access/").content.decode()
    assert f'name="groups" value="{finance.pk}" checked' in page and f'name="users" value="{alice.pk}" checked' in page
    admin_client.post(f"/admin/models/{finance_bot.pk}/access/", {"access": "restricted", "users": [alice.pk]})
    assert not finance_bot.allowed_groups.exists() and list(finance_bot.allowed_users.all()) == [alice]


def test_access_page_does_not_list_every_user(admin_client: User, finance_bot: LLMModel) -> None:
    User.objects.bulk_create([User(username=f"employee{i:04d}") for i in range(500)])
    page = admin_client.get(f"/admin/models/{finance_bot.pk}/access/")
    assert page.status_code == 200
    assert b"employee0001" not in page.content and b'data-search-kind="users"' in page.content
    suggestions = admin_client.get("/admin/users/search/?kind=users&q=employee04").json()["items"]
    assert [s["value"] for s in suggestions][:2] == ["employee0400", "employee0401"] and len(suggestions) == 20


def test_unknown_names_are_refused_and_nothing_changes(admin_client: Client, finance_bot: LLMModel) -> None:
    response = admin_client.post(
        f"/admin/models/{finance_bot.pk}/access/", {"access": "restricted", "add_users": "nobody", "add_groups": "Nope"}
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "No active user without admin rights is called nobody" in text and "There is no group called Nope" in text
    finance_bot.refresh_from_db()
    assert finance_bot.access == Access.EVERYONE and not AdminAction.objects.filter(action="model.access").exists()
