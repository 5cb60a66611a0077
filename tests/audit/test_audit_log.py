"""The audit log: append-only rows, sign-ins recorded from the real login form, the staff
page (filters, keyset pages) and its CSV export (formula injection neutralised)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.test import Client, override_settings

from audit.models import AppendOnlyError, AuditEntry
from audit.services import audit_record, client_address
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


async def _read(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


def _csv(response: Any) -> list[list[str]]:
    # The CSV streams from an async iterator (as daphne serves it); read it the same way.
    body = async_to_sync(_read)(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


# --- Append-only -------------------------------------------------------------------------------


def test_an_entry_cannot_be_changed_or_deleted(alice: User) -> None:
    audit_record(actor=alice, action="test.done", target="x")
    entry = AuditEntry.objects.get(action="test.done")
    entry.target = "y"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(pk=entry.pk).update(target="y")
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.all().delete()
    assert AuditEntry.objects.get(pk=entry.pk).target == "x"


def test_a_deleted_users_entries_keep_their_name(alice: User) -> None:
    audit_record(actor=alice, action="test.done")
    alice.delete()
    entry = AuditEntry.objects.get(action="test.done")
    assert (entry.actor_id, entry.actor_name) == (None, "alice")


def test_the_entries_are_not_editable_in_djangos_admin() -> None:
    from django.contrib import admin

    assert AuditEntry not in admin.site._registry


# --- Sign-ins, through the real login form -------------------------------------------------------


def test_a_sign_in_is_recorded_once_with_its_address(alice: User) -> None:
    response = Client(REMOTE_ADDR="198.51.100.7").post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    entries = list(AuditEntry.objects.filter(action__startswith="signin."))
    assert [(e.action, e.actor_id, e.actor_name, e.target, e.address) for e in entries] == [
        ("signin.succeeded", alice.pk, "alice", "alice", "198.51.100.7")
    ]


def test_a_failed_sign_in_is_recorded_once_without_the_password(alice: User) -> None:
    response = Client(REMOTE_ADDR="198.51.100.8").post("/accounts/login/", {"username": "alice", "password": "wrong-horse"})
    assert response.status_code == 200
    entries = list(AuditEntry.objects.filter(action__startswith="signin."))
    assert [(e.action, e.actor_id, e.target, e.address) for e in entries] == [("signin.failed", None, "alice", "198.51.100.8")]
    assert "wrong-horse" not in str(entries[0].detail)


# --- The client address ------------------------------------------------------------------------


class _Request:
    def __init__(self, meta: dict[str, str]) -> None:
        self.META = meta


def test_a_forwarded_address_from_anyone_else_is_ignored() -> None:
    request = _Request({"REMOTE_ADDR": "203.0.113.5", "HTTP_X_FORWARDED_FOR": "10.9.9.9"})
    assert client_address(request) == "203.0.113.5"  # type: ignore[arg-type]


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8"])
def test_a_trusted_proxy_names_the_client() -> None:
    request = _Request({"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 198.51.100.9, 10.0.0.3"})
    # From the right: 10.0.0.3 is a trusted hop, 198.51.100.9 is the client; 6.6.6.6 is what it claimed.
    assert client_address(request) == "198.51.100.9"  # type: ignore[arg-type]


# --- The page ----------------------------------------------------------------------------------


def test_outsiders_get_404_and_anonymous_the_login(alice: User) -> None:
    assert client_for(alice).get("/admin/audit/").status_code == 404
    assert client_for(alice).get("/admin/audit/export.csv").status_code == 404
    anonymous = Client().get("/admin/audit/")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    assert not AuditEntry.objects.filter(action="audit.exported").exists()


def test_the_page_shows_newest_first_and_markup_as_text(admin_user: User, alice: User) -> None:
    audit_record(actor=alice, action="share.created", target="<b>first</b>", address="192.0.2.1")
    audit_record(actor=admin_user, action="model.delete", target="second")
    response = client_for(admin_user).get("/admin/audit/")
    assert response.status_code == 200
    page = response.content.decode()
    assert page.index("second") < page.index("&lt;b&gt;first&lt;/b&gt;")
    assert "<b>first</b>" not in page and "192.0.2.1" in page


def test_filters_narrow_the_page(admin_user: User, alice: User, bob: User) -> None:
    client = client_for(admin_user)  # itself a sign-in: the oldest entry
    audit_record(actor=alice, action="signin.failed", target="alice")
    audit_record(actor=bob, action="signin.succeeded", target="bob")
    audit_record(actor=alice, action="share.created", target="conversation 1")

    def shown(**params: str) -> list[str]:
        response = client.get("/admin/audit/", params)
        assert response.status_code == 200
        return [e.action + ":" + e.actor_name for e in response.context["entries"]]

    assert shown(action="signin") == ["signin.succeeded:bob", "signin.failed:alice", "signin.succeeded:admin"]
    assert shown(actor="ALICE") == ["share.created:alice", "signin.failed:alice"]
    assert shown(q="conversation") == ["share.created:alice"]
    assert shown(since="2000-01-01", until="2000-01-02") == []
    assert shown(since="not a date", action="s") == [
        "share.created:alice", "signin.succeeded:bob", "signin.failed:alice", "signin.succeeded:admin"
    ]


def test_pages_of_fifty_follow_each_other(admin_user: User) -> None:
    AuditEntry.objects.bulk_create([AuditEntry(action="test.bulk", target=f"t{i:03d}") for i in range(120)])
    client = client_for(admin_user)
    seen: list[str] = []
    url = "/admin/audit/?action=test"
    for _ in range(3):
        response = client.get(url)
        seen += [e.target for e in response.context["entries"]]
        url = "/admin/audit/" + response.context["next_url"] if response.context["next_url"] else ""
        if not url:
            break
    assert seen == [f"t{i:03d}" for i in range(119, -1, -1)]
    assert url == ""


def test_the_csv_has_the_filtered_rows_neutralised(admin_user: User, alice: User) -> None:
    for target in ["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "plain"]:
        audit_record(actor=alice, action="share.created", target=target, address="192.0.2.3")
    audit_record(actor=alice, action="signin.failed", target="=not-in-filter")
    response = client_for(admin_user).get("/admin/audit/export.csv", {"action": "share"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    rows = _csv(response)
    assert rows[0] == ["time", "actor", "action", "target", "detail", "address"]
    assert [row[3] for row in rows[1:]] == ["plain", "'@SUM(A1)", "'-2", "'+1", "'=HYPERLINK(\"http://x\")"]
    assert {row[1] for row in rows[1:]} == {"alice"}
    exported = AuditEntry.objects.get(action="audit.exported")
    assert (exported.actor_id, exported.detail) == (admin_user.pk, {"action": "share"})


def test_a_username_that_looks_like_a_formula_is_neutralised(admin_user: User) -> None:
    audit_record(actor=User.objects.create_user(username="=cmd|' /C calc'!A0"), action="test.formula")
    rows = _csv(client_for(admin_user).get("/admin/audit/export.csv", {"action": "test."}))
    assert rows[1][1] == "'=cmd|' /C calc'!A0"


def test_the_csv_reads_in_batches_and_stops_at_its_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    from audit import csv_export

    AuditEntry.objects.bulk_create([AuditEntry(action="test.bulk", target=f"t{i}") for i in range(7)])
    monkeypatch.setattr(csv_export, "BATCH", 2)
    body = async_to_sync(_read)(csv_export.csv_chunks(AuditEntry.objects.filter(action="test.bulk"), max_rows=5))
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert [row[3] for row in rows[1:6]] == ["t6", "t5", "t4", "t3", "t2"]
    assert rows[6] == ["# stopped after 5 rows: narrow the filters for the rest"]
