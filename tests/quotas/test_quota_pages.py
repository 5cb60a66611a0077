"""The admin's quota page (/admin/usage/quotas/) and everyone's own usage page
(/settings/usage/): staff only, redirect after POST, audited, fields listed, bad input refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import AbstractUser, Group
from django.test import Client
from django.utils import timezone

from accounts.models import Quota
from audit.models import AuditEntry

from .helpers import group_quota, seed_usage, user_quota

pytestmark = pytest.mark.django_db


def _client(user: AbstractUser) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_admin_sets_a_group_quota_and_it_is_audited(admin_user: AbstractUser) -> None:
    group = Group.objects.create(name="interns")
    client = _client(admin_user)
    response = client.post(
        f"/admin/usage/quotas/group/{group.pk}/",
        {f"g{group.pk}-tokens_per_day": "20000", f"g{group.pk}-requests_per_minute": "10", "back": "/admin/usage/quotas/?group=int"},
        REMOTE_ADDR="10.1.2.3",
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/usage/quotas/?group=int"
    quota = Quota.objects.get(group=group)
    assert (quota.tokens_per_day, quota.tokens_per_month, quota.requests_per_minute, quota.concurrent_answers) == (
        20000, None, 10, None
    )
    entry = AuditEntry.objects.get(action="quota.changed")
    assert (entry.actor_id, entry.target, entry.address) == (admin_user.pk, "group:interns", "10.1.2.3")
    assert entry.detail["after"]["tokens_per_day"] == 20000
    assert entry.detail["before"]["tokens_per_day"] is None
    page = client.get("/admin/usage/quotas/")
    assert page.status_code == 200
    assert 'value="20000"' in page.content.decode()


def test_saving_the_same_values_again_records_nothing_and_blank_removes_the_quota(
    admin_user: AbstractUser, alice: AbstractUser
) -> None:
    client = _client(admin_user)
    url = f"/admin/usage/quotas/user/{alice.pk}/"
    assert client.post(url, {f"u{alice.pk}-tokens_per_day": "500"}).status_code == 302
    assert client.post(url, {f"u{alice.pk}-tokens_per_day": "500"}).status_code == 302
    assert AuditEntry.objects.filter(action="quota.changed").count() == 1
    assert client.post(url, {f"u{alice.pk}-tokens_per_day": ""}).status_code == 302
    assert not Quota.objects.filter(user=alice).exists()
    assert AuditEntry.objects.filter(action="quota.changed").count() == 2


def test_bad_values_are_refused_with_a_message_and_nothing_changes(admin_user: AbstractUser, alice: AbstractUser) -> None:
    user_quota(alice, tokens_per_day=500)
    client = _client(admin_user)
    response = client.post(
        f"/admin/usage/quotas/user/{alice.pk}/",
        {f"u{alice.pk}-tokens_per_day": "-5", f"u{alice.pk}-requests_per_minute": "0", "back": "https://evil.example/"},
        follow=True,
    )
    assert response.redirect_chain == [("/admin/usage/quotas/", 302)]  # never to another site
    text = response.content.decode()
    assert "The quota for alice was not saved." in text
    assert "Tokens per day: Ensure this value is greater than or equal to 0." in text
    assert Quota.objects.get(user=alice).tokens_per_day == 500
    assert not AuditEntry.objects.filter(action="quota.changed").exists()


def test_mass_assignment_is_ignored(admin_user: AbstractUser, alice: AbstractUser, bob: AbstractUser) -> None:
    client = _client(admin_user)
    client.post(
        f"/admin/usage/quotas/user/{alice.pk}/",
        {f"u{alice.pk}-tokens_per_day": "7", "user": str(bob.pk), "user_id": str(bob.pk), "group": "1",
         "is_staff": "on", f"u{alice.pk}-user": str(bob.pk)},
    )
    assert list(Quota.objects.values_list("user_id", "group_id", "tokens_per_day")) == [(alice.pk, None, 7)]
    alice.refresh_from_db()
    assert not alice.is_staff


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/admin/usage/quotas/"),
        ("post", "/admin/usage/quotas/user/{alice}/"),
        ("post", "/admin/usage/quotas/group/{group}/"),
    ],
)
def test_a_non_admin_gets_404_and_nothing_changes(alice: AbstractUser, bob: AbstractUser, method: str, path: str) -> None:
    group = Group.objects.create(name="team")
    url = path.format(alice=alice.pk, group=group.pk)
    data = {f"u{alice.pk}-tokens_per_day": "1000000", f"g{group.pk}-tokens_per_day": "1000000"}
    response = getattr(_client(bob), method)(url, data)
    assert response.status_code == 404
    assert not Quota.objects.exists()
    anonymous = getattr(Client(), method)(url, data)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/")


def test_unknown_ids_are_404(admin_user: AbstractUser) -> None:
    client = _client(admin_user)
    assert client.post("/admin/usage/quotas/user/999999/", {}).status_code == 404
    assert client.post("/admin/usage/quotas/group/999999/", {}).status_code == 404


def test_the_user_search_finds_people_and_names_render_as_text(admin_user: AbstractUser) -> None:
    from tests.conftest import make_user

    make_user("<b>mallory</b>")
    page = _client(admin_user).get("/admin/usage/quotas/", {"user": "mallory"})
    text = page.content.decode()
    assert "&lt;b&gt;mallory&lt;/b&gt;" in text
    assert "<b>mallory</b>" not in text


def test_everyone_sees_their_own_usage_and_limits(alice: AbstractUser, bob: AbstractUser) -> None:
    group_quota("interns", [alice], tokens_per_day=1_000, tokens_per_month=20_000)
    user_quota(alice, requests_per_minute=6)
    seed_usage(alice, tokens=120, at=timezone.now() - timedelta(minutes=1))
    seed_usage(bob, tokens=9_999, at=timezone.now() - timedelta(minutes=1))
    page = _client(alice).get("/settings/usage/")
    assert page.status_code == 200
    text = page.content.decode()
    assert '<dd id="tokens-today">120</dd>' in text
    assert '<dd id="requests-today">1</dd>' in text
    assert "120 / 1,000" in text
    assert "from the group interns" in text
    assert "set for you" in text
    assert "the platform's default" in text  # concurrent answers: no quota sets it
    assert "9,999" not in text
    assert Client().get("/settings/usage/").status_code == 302
