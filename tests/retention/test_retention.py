"""Retention: exactly the conversations past their policy go (a project's own days, else the
installation's RETENTION_DAYS, 0 = never), in batches, once; each run is audited."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.utils import timezone

from audit.models import AuditEntry
from chat import retention
from chat.models import Conversation, ConversationShare, Message, Role
from chat.tasks import retention_purge as retention_task
from projects.models import Membership, Project, ProjectRole
from tests.factories import add_messages

pytestmark = pytest.mark.django_db
NOW = timezone.now()


def _conversation(owner: User, title: str, *, days_old: int, project: Project | None = None) -> Conversation:
    conversation = Conversation.objects.create(owner=owner, title=title, project=project)
    add_messages(conversation, (Role.USER, "hello"), (Role.ASSISTANT, "hi"))
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=NOW - dt.timedelta(days=days_old, minutes=1))
    return conversation


def _project(owner: User, name: str, retention_days: int | None) -> Project:
    project = Project.objects.create(name=name, created_by=owner, retention_days=retention_days)
    Membership.objects.create(project=project, user=owner, role=ProjectRole.OWNER)
    return project


def _titles() -> set[str]:
    return set(Conversation.objects.values_list("title", flat=True))


@override_settings(RETENTION_DAYS=30)
def test_global_and_project_policies_delete_exactly_the_right_conversations(alice: User, bob: User) -> None:
    short = _project(alice, "Short", 7)
    forever = _project(alice, "Forever", 0)
    follows = _project(alice, "Follows", None)
    _conversation(alice, "private old", days_old=31)
    _conversation(bob, "private recent", days_old=29)
    _conversation(alice, "short old", days_old=8, project=short)
    _conversation(alice, "short recent", days_old=6, project=short)
    _conversation(alice, "forever ancient", days_old=3000, project=forever)
    _conversation(alice, "follows old", days_old=31, project=follows)
    _conversation(alice, "follows recent", days_old=20, project=follows)
    shared = _conversation(alice, "shared old", days_old=40)
    ConversationShare.objects.create(conversation=shared, user=bob, shared_by=alice)

    result = retention.retention_purge(now=NOW)

    assert _titles() == {"private recent", "short recent", "forever ancient", "follows recent"}
    assert (result.deleted, result.global_deleted, result.by_project) == (4, 3, {str(short.pk): 1})
    assert not ConversationShare.objects.exists()
    assert Message.objects.count() == 8  # two per conversation kept
    entry = AuditEntry.objects.get(action="retention.purged")
    assert (entry.actor_id, entry.target) == (None, "conversations")
    assert entry.detail == {"deleted": 4, "global_days": 30, "global_deleted": 3, "projects": {str(short.pk): 1},
                            "capped": False}


@override_settings(RETENTION_DAYS=0)
def test_zero_keeps_everything_and_a_project_policy_still_applies(alice: User) -> None:
    short = _project(alice, "Short", 7)
    _conversation(alice, "private ancient", days_old=5000)
    _conversation(alice, "short old", days_old=8, project=short)
    assert retention.retention_purge(now=NOW).deleted == 1
    assert _titles() == {"private ancient"}


@override_settings(RETENTION_DAYS=0)
def test_no_policy_at_all_does_nothing_and_records_nothing(alice: User) -> None:
    _conversation(alice, "private ancient", days_old=5000)
    assert retention_task() == 0  # the Celery task, called as beat would (eagerly)
    assert _titles() == {"private ancient"}
    assert not AuditEntry.objects.filter(action="retention.purged").exists()


@override_settings(RETENTION_DAYS=10)
def test_a_second_run_deletes_nothing_more_and_is_audited_again(alice: User) -> None:
    _conversation(alice, "old", days_old=11)
    assert retention.retention_purge(now=NOW).deleted == 1
    assert retention.retention_purge(now=NOW).deleted == 0
    assert [e.detail["deleted"] for e in AuditEntry.objects.filter(action="retention.purged").order_by("id")] == [1, 0]


@override_settings(RETENTION_DAYS=10)
def test_batches_are_bounded_and_the_rest_waits_for_the_next_run(alice: User, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "BATCH", 2)
    for i in range(5):
        _conversation(alice, f"old {i}", days_old=11 + i)
    first = retention.retention_purge(now=NOW, max_per_run=3)
    assert (first.deleted, first.capped) == (3, True)
    assert _titles() == {"old 0", "old 1"}  # the oldest went first
    second = retention.retention_purge(now=NOW, max_per_run=3)
    assert (second.deleted, second.capped) == (2, False)
    assert _titles() == set()


@override_settings(RETENTION_DAYS=10)
def test_a_conversation_touched_just_now_is_kept(alice: User) -> None:
    conversation = _conversation(alice, "old but touched", days_old=11)
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now())
    assert retention.retention_purge().deleted == 0


def test_the_beat_schedule_runs_it_nightly() -> None:
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["retention-purge"]
    assert entry["task"] == "chat.tasks.retention_purge"
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({3}, {30})


# --- The owners' setting --------------------------------------------------------------------------


def _owner_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_owner_sets_the_projects_retention_and_it_is_audited(alice: User) -> None:
    project = _project(alice, "Short", None)
    client = _owner_client(alice)
    page = client.get(f"/p/{project.pk}/settings/")
    assert page.status_code == 200 and b'id="retention-form"' in page.content
    response = client.post(f"/p/{project.pk}/retention/", {"retention_days": "14"})
    assert response.status_code == 302 and response["Location"] == f"/p/{project.pk}/settings/"
    project.refresh_from_db()
    assert project.retention_days == 14
    entry = AuditEntry.objects.get(action="project.retention_changed")
    assert (entry.actor_id, entry.detail) == (alice.pk, {"before": None, "after": 14})
    assert client.post(f"/p/{project.pk}/retention/", {"retention_days": ""}).status_code == 302
    project.refresh_from_db()
    assert project.retention_days is None


def test_a_negative_number_is_refused(alice: User) -> None:
    project = _project(alice, "Short", 5)
    response = _owner_client(alice).post(f"/p/{project.pk}/retention/", {"retention_days": "-1"})
    assert response.status_code == 400
    project.refresh_from_db()
    assert project.retention_days == 5


def test_an_editor_or_an_outsider_cannot_change_it(alice: User, bob: User, charlie: User) -> None:
    project = _project(alice, "Short", 5)
    Membership.objects.create(project=project, user=bob, role=ProjectRole.EDITOR)
    assert _owner_client(bob).post(f"/p/{project.pk}/retention/", {"retention_days": "1"}).status_code == 403
    assert _owner_client(charlie).post(f"/p/{project.pk}/retention/", {"retention_days": "1"}).status_code == 404
    project.refresh_from_db()
    assert project.retention_days == 5
    assert not AuditEntry.objects.filter(action="project.retention_changed").exists()
