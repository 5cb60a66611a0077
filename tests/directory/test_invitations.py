"""Invitation links: single use, expiring, pre-assigned to groups and projects; a guessed,
reused or expired link gets a clear page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import AbstractUser, Group, User
from django.test import Client
from django.utils import timezone

from audit.models import AuditEntry
from directory.models import Invitation
from directory.services import group_create, invitation_create
from projects.models import Membership
from projects.services import project_create

pytestmark = pytest.mark.django_db

NEW_ACCOUNT = {
    "username": "colleague",
    "email": "colleague@example.com",
    "first_name": "Col",
    "last_name": "League",
    "password1": "a long enough passphrase",
    "password2": "a long enough passphrase",
}


def _link_from(admin_client: Client, data: dict[str, str]) -> str:
    posted = admin_client.post("/admin/users/invite/", data)
    assert posted.status_code == 302 and posted["Location"] == "/admin/users/invite/", posted.content[:500]
    page = admin_client.get("/admin/users/invite/").content.decode()
    link = re.search(r'value="http://testserver(/invite/[A-Za-z0-9_-]+/)"', page)
    assert link is not None
    # Shown once: the next visit has no link (a reload cannot make or show another).
    assert "/invite/" not in re.sub(r"/admin/users/invite/", "", admin_client.get("/admin/users/invite/").content.decode())
    return link.group(1)


def test_invited_colleague_joins_groups_and_projects_and_lands_in_the_chat(admin_client: Client, admin_user: AbstractUser, alice: AbstractUser) -> None:
    group_create(name="Finance", by=admin_user, address="")
    project = project_create(creator=alice, name="Budget 2027")
    link = _link_from(admin_client, {"email": "colleague@example.com", "note": "new in finance", "days": "7",
                                     "groups": "finance", "projects": "budget 2027", "role": "viewer"})
    invitation = Invitation.objects.get()
    token = link.split("/")[2]
    assert invitation.token_hash != token and token not in invitation.token_hash  # stored hashed

    visitor = Client()
    form = visitor.get(link)
    assert form.status_code == 200 and b'value="colleague@example.com"' in form.content
    accepted = visitor.post(link, {**NEW_ACCOUNT, "is_staff": "on", "is_superuser": "on", "groups": "1"})
    assert accepted.status_code == 302 and accepted["Location"] == "/"
    user = User.objects.get(username="colleague")
    assert not user.is_staff and not user.is_superuser
    assert list(user.groups.values_list("name", flat=True)) == ["Finance"]
    assert Membership.objects.get(user=user, project=project).role == "viewer"
    assert visitor.get("/", HTTP_ACCEPT="text/html").status_code == 200  # signed in, in the chat
    assert list(AuditEntry.objects.filter(action__in=["user.invited", "invite.accepted"]).order_by("pk").values_list("action", "actor_name")) == [
        ("user.invited", "admin"), ("invite.accepted", "colleague")
    ]

    # Used: the same link again is a clear page, and makes nothing.
    again = Client().post(link, {**NEW_ACCOUNT, "username": "second"})
    assert again.status_code == 410 and b"already been used" in again.content
    assert not User.objects.filter(username="second").exists()


def test_expired_invitation_is_refused_with_a_clear_page(admin_user: AbstractUser) -> None:
    invitation, token = invitation_create(by=admin_user, address="", days=1)
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    for method in ("get", "post"):
        response = getattr(Client(), method)(f"/invite/{token}/", NEW_ACCOUNT)
        assert response.status_code == 410 and b"has expired" in response.content
    assert not User.objects.filter(username="colleague").exists()


def test_guessed_or_mangled_token_is_not_found(admin_user: AbstractUser) -> None:
    _invitation, token = invitation_create(by=admin_user, address="")
    for guess in ("x" * 43, token[:-1], token + "a", "a" * 101):
        response = Client().post(f"/invite/{guess}/", NEW_ACCOUNT)
        assert response.status_code == 404 and b"not valid" in response.content
    assert not User.objects.filter(username="colleague").exists()


def test_revoked_invitation_is_gone(admin_client: Client, admin_user: AbstractUser) -> None:
    invitation, token = invitation_create(by=admin_user, address="", email="x@example.com")
    assert b"x@example.com" in admin_client.get("/admin/users/").content
    assert admin_client.post(f"/admin/users/invitations/{invitation.pk}/revoke/").status_code == 302
    response = Client().get(f"/invite/{token}/")
    assert response.status_code == 410 and b"withdrawn" in response.content


def test_a_bad_form_keeps_the_link_usable(admin_user: AbstractUser) -> None:
    _invitation, token = invitation_create(by=admin_user, address="")
    refused = Client().post(f"/invite/{token}/", {**NEW_ACCOUNT, "password2": "something else"})
    assert refused.status_code == 400 and b"The two passwords differ" in refused.content
    taken = Client().post(f"/invite/{token}/", {**NEW_ACCOUNT, "username": "ADMIN"})
    assert taken.status_code == 400 and b"is taken" in taken.content
    assert Client().post(f"/invite/{token}/", NEW_ACCOUNT).status_code == 302


def test_invitation_form_checks_groups_and_days(admin_client: Client) -> None:
    response = admin_client.post("/admin/users/invite/", {"days": "0", "groups": "No such group"})
    assert response.status_code == 400
    assert "There is no group called No such group" in response.content.decode()
    assert not Invitation.objects.exists() and not Group.objects.exists()
