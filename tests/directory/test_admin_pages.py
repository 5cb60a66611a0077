"""The users and groups pages: staff only, server-side search, every action its own POST,
nothing a form does not list is ever read."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.contrib.auth.models import AbstractUser, Group, User
from django.test import Client

from audit.models import AuditEntry
from directory.models import Invitation, Profile
from directory.services import group_create, group_members_add
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db

SignedIn = Callable[[AbstractUser], Client]

ADMIN_ACTIONS = [
    ("get", "/admin/users/"),
    ("get", "/admin/users/?q=bob"),
    ("get", "/admin/users/new/"),
    ("post", "/admin/users/new/"),
    ("get", "/admin/users/search/?q=b"),
    ("get", "/admin/users/invite/"),
    ("post", "/admin/users/invite/"),
    ("get", "/admin/users/{bob}/"),
    ("post", "/admin/users/{bob}/admin/"),
    ("post", "/admin/users/{bob}/deactivate/"),
    ("post", "/admin/users/{bob}/reactivate/"),
    ("post", "/admin/users/{bob}/reset-link/"),
    ("post", "/admin/users/{bob}/groups/"),
    ("post", "/admin/users/{bob}/groups/{group}/remove/"),
    ("post", "/admin/users/{bob}/approve/"),
    ("post", "/admin/users/{bob}/reject/"),
    ("get", "/admin/groups/"),
    ("post", "/admin/groups/"),
    ("get", "/admin/groups/{group}/"),
    ("post", "/admin/groups/{group}/rename/"),
    ("post", "/admin/groups/{group}/delete/"),
    ("post", "/admin/groups/{group}/members/"),
    ("post", "/admin/groups/{group}/members/{bob}/remove/"),
]


def _state() -> tuple[object, ...]:
    return (
        sorted(User.objects.values_list("username", "is_active", "is_staff", "is_superuser")),
        sorted(Group.objects.values_list("name", flat=True)),
        sorted(User.groups.through.objects.values_list("user__username", "group__name")),
        Invitation.objects.count(),
        Profile.objects.count(),
        AuditEntry.objects.count(),
    )


def test_ordinary_users_get_not_found_from_every_page_and_action_and_nothing_changes(
    alice: AbstractUser, bob: AbstractUser, admin_user: AbstractUser, signed_in: SignedIn
) -> None:
    group = group_create(name="Finance", by=admin_user, address="")
    group_members_add(group=group, users=[bob], by=admin_user, address="")
    Profile.objects.create(user=bob, pending=True)
    client = signed_in(alice)  # signing in is audited: before the snapshot
    before = _state()
    data = {"username": "mallory", "password": PASSWORD, "make": "1", "groups": "Finance", "name": "Hacked",
            "usernames": "alice", "days": "7", "is_staff": "on"}
    for method, url in ADMIN_ACTIONS:
        response = getattr(client, method)(url.format(bob=bob.pk, group=group.pk), data)
        assert response.status_code == 404, (method, url)
        assert b"Finance" not in response.content and b"bob" not in response.content, url
        assert _state() == before, (method, url)


@pytest.mark.parametrize("url", ["/admin/users/", "/admin/groups/", "/admin/users/invite/"])
def test_anonymous_visitors_are_sent_to_sign_in(url: str) -> None:
    response = Client().get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_users_page_searches_and_filters_on_the_server(admin_client: Client, admin_user: AbstractUser) -> None:
    User.objects.bulk_create([User(username=f"user{i:02d}") for i in range(60)])  # no password hashing: fast
    dana = User.objects.create_user(username="dana", first_name="Dana", last_name="Scully", email="dana@fbi.example")
    sales = group_create(name="Sales", by=admin_user, address="")
    group_members_add(group=sales, users=[dana], by=admin_user, address="")
    pending = make_user("newcomer")
    Profile.objects.create(user=pending, pending=True)
    gone = make_user("leaver")
    User.objects.filter(pk=gone.pk).update(is_active=False)

    first = admin_client.get("/admin/users/")
    assert first.status_code == 200
    assert len(first.context["page"].object_list) == 50 and first.context["page"].paginator.count == 64
    second = admin_client.get("/admin/users/?page=2")
    assert len(second.context["page"].object_list) == 14

    def names(query: str) -> list[str]:
        return [u.username for u in admin_client.get(f"/admin/users/?{query}").context["page"]]

    assert names("q=scully") == ["dana"]
    assert names("q=fbi.example") == ["dana"]
    assert names("q=dana+scully") == ["dana"]
    assert names(f"group={sales.pk}") == ["dana"]
    assert names("status=pending") == ["newcomer"]
    assert names("status=inactive") == ["leaver"]
    assert "newcomer" not in names("status=active") and "leaver" not in names("status=active")
    assert names("admin=yes") == ["admin"]
    # The approval queue is on the page with its buttons.
    page = admin_client.get("/admin/users/").content.decode()
    assert f"/admin/users/{pending.pk}/approve/" in page and f"/admin/users/{pending.pk}/reject/" in page


def test_names_and_markup_render_as_text(admin_client: Client) -> None:
    User.objects.create_user(username="eve", first_name="<script>alert(1)</script>", email="e@x.example")
    page = admin_client.get("/admin/users/").content.decode()
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_search_suggestions_are_bounded(admin_client: Client) -> None:
    User.objects.bulk_create([User(username=f"sam{i:02d}") for i in range(30)])
    items = admin_client.get("/admin/users/search/?kind=users&q=sam").json()["items"]
    assert len(items) == 20 and items[0]["value"] == "sam00"
    assert admin_client.get("/admin/users/search/?kind=users&q=").json() == {"items": []}
    assert admin_client.get("/admin/users/search/?kind=secrets&q=a").status_code == 400


def test_admin_creates_a_user_and_is_staff_posted_with_it_is_ignored(admin_client: Client) -> None:
    response = admin_client.post(
        "/admin/users/new/",
        {"username": "frank", "email": "frank@example.com", "first_name": "Frank", "password": PASSWORD,
         "is_staff": "on", "is_superuser": "on", "groups": "1"},
    )
    frank = User.objects.get(username="frank")
    assert response.status_code == 302 and response["Location"] == f"/admin/users/{frank.pk}/"
    assert not frank.is_staff and not frank.is_superuser and not frank.groups.exists()
    assert frank.check_password(PASSWORD) and frank.email == "frank@example.com"
    assert AuditEntry.objects.filter(action="user.created", target="frank").count() == 1
    # A taken name (in any case) is refused on the form, nothing is created.
    again = admin_client.post("/admin/users/new/", {"username": "FRANK", "password": PASSWORD})
    assert again.status_code == 400 and "is taken" in again.content.decode()
    assert User.objects.filter(username__iexact="frank").count() == 1


def test_a_user_without_a_password_gets_a_reset_link_that_works_once(admin_client: Client, signed_in: SignedIn) -> None:
    created = admin_client.post("/admin/users/new/", {"username": "grace"})
    grace = User.objects.get(username="grace")
    assert created.status_code == 302 and not grace.has_usable_password()

    posted = admin_client.post(f"/admin/users/{grace.pk}/reset-link/")
    assert posted.status_code == 302 and posted["Location"] == f"/admin/users/{grace.pk}/"
    page = admin_client.get(f"/admin/users/{grace.pk}/").content.decode()
    link = re.search(r'value="http://testserver(/accounts/reset/[^"]+)"', page)
    assert link is not None
    assert "/accounts/reset/" not in admin_client.get(f"/admin/users/{grace.pk}/").content.decode()  # shown once
    assert AuditEntry.objects.filter(action="user.password_reset_link", target="grace").count() == 1

    visitor = Client()
    form_page = visitor.get(link.group(1), follow=True)
    assert form_page.status_code == 200 and b'id="reset-form"' in form_page.content
    done = visitor.post(form_page.redirect_chain[-1][0], {"new_password1": "a new long passphrase", "new_password2": "a new long passphrase"})
    assert done.status_code == 302 and done["Location"] == "/accounts/reset/done/"
    grace.refresh_from_db()
    assert grace.check_password("a new long passphrase")
    # Used: the same link now says so, in the platform's look.
    again = Client().get(link.group(1), follow=True)
    assert again.status_code == 200 and b'id="reset-invalid"' in again.content


def test_make_and_unmake_admin_is_its_own_action(admin_client: Client, admin_user: AbstractUser, bob: AbstractUser) -> None:
    assert admin_client.post(f"/admin/users/{bob.pk}/admin/", {"make": "1"}).status_code == 302
    bob.refresh_from_db()
    assert bob.is_staff and not bob.is_superuser
    assert admin_client.post(f"/admin/users/{bob.pk}/admin/", {"make": "0"}).status_code == 302
    bob.refresh_from_db()
    assert not bob.is_staff
    assert list(AuditEntry.objects.filter(target="bob").order_by("pk").values_list("action", flat=True)) == [
        "user.admin_granted", "user.admin_revoked"
    ]
    # An admin cannot drop their own rights (nobody could get them back) nor deactivate themselves.
    admin_client.post(f"/admin/users/{admin_user.pk}/admin/", {"make": "0"})
    admin_client.post(f"/admin/users/{admin_user.pk}/deactivate/")
    admin_user.refresh_from_db()
    assert admin_user.is_staff and admin_user.is_superuser and admin_user.is_active


def test_groups_create_rename_members_delete(admin_client: Client, alice: AbstractUser, bob: AbstractUser) -> None:
    created = admin_client.post("/admin/groups/", {"name": "  Legal   team "})
    group = Group.objects.get(name="Legal team")
    assert created.status_code == 302 and created["Location"] == f"/admin/groups/{group.pk}/"
    assert admin_client.post("/admin/groups/", {"name": "legal TEAM"}).status_code == 400
    assert admin_client.post(f"/admin/groups/{group.pk}/members/", {"usernames": "alice, BOB"}).status_code == 302
    assert set(group.user_set.values_list("username", flat=True)) == {"alice", "bob"}
    refused = admin_client.post(f"/admin/groups/{group.pk}/members/", {"usernames": "nobody-here"}, follow=True)
    assert "Nobody is called nobody-here" in refused.content.decode()
    admin_client.post(f"/admin/groups/{group.pk}/members/{bob.pk}/remove/")
    assert list(group.user_set.values_list("username", flat=True)) == ["alice"]
    found = admin_client.get(f"/admin/groups/{group.pk}/?q=ali")
    assert [u.username for u in found.context["page"]] == ["alice"]
    admin_client.post(f"/admin/groups/{group.pk}/rename/", {"name": "Legal"})
    group.refresh_from_db()
    assert group.name == "Legal"
    # From the user's page too.
    admin_client.post(f"/admin/users/{bob.pk}/groups/", {"groups": "legal"})
    assert bob.groups.filter(pk=group.pk).exists()
    admin_client.post(f"/admin/users/{bob.pk}/groups/{group.pk}/remove/")
    assert not bob.groups.exists()
    deleted = admin_client.post(f"/admin/groups/{group.pk}/delete/")
    assert deleted.status_code == 302 and not Group.objects.exists()
    assert User.objects.filter(username="alice").exists()
    assert [a for a in AuditEntry.objects.order_by("pk").values_list("action", flat=True) if a.startswith("group.")] == [
        "group.created", "group.members_added", "group.member_removed", "group.renamed",
        "group.members_added", "group.member_removed", "group.deleted",
    ]


def test_unknown_ids_are_not_found(admin_client: Client) -> None:
    assert admin_client.get("/admin/users/999999/").status_code == 404
    assert admin_client.post("/admin/users/999999/deactivate/").status_code == 404
    assert admin_client.get("/admin/groups/999999/").status_code == 404
    assert admin_client.post("/admin/users/invitations/999999/revoke/").status_code == 404


def test_user_page_links_to_data_download_and_deletion(admin_client: Client, bob: AbstractUser) -> None:
    page = admin_client.get(f"/admin/users/{bob.pk}/").content.decode()
    assert f'href="/admin/users/{bob.pk}/data.zip"' in page and f'href="/admin/users/{bob.pk}/delete/"' in page
    assert "is-active" in page  # the Users link of the admin header
