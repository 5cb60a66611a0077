"""The daily rollups: one beat task recomputes the last days by replacing their rows, so it is
idempotent; usage records are read only in Django's admin."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.models import UsageDaily, UsageRecord, UsageSource
from tests.quotas.helpers import seed_usage
from usage import tasks

pytestmark = pytest.mark.django_db


def _daily() -> list[tuple[object, ...]]:
    return sorted(
        UsageDaily.objects.values_list("day", "user_id", "model_name", "source", "requests", "prompt_tokens", "completion_tokens")
    )


def test_the_rollup_task_is_idempotent_and_replaces_a_days_rows(alice: AbstractUser, bob: AbstractUser) -> None:
    now = timezone.now()
    yesterday = timezone.localdate() - timedelta(days=1)
    seed_usage(alice, tokens=100, at=now - timedelta(days=1))
    seed_usage(alice, tokens=50, at=now - timedelta(days=1))
    seed_usage(bob, tokens=10, at=now - timedelta(days=1), source=UsageSource.OPENAI)
    seed_usage(bob, tokens=7, at=now - timedelta(days=2))
    seed_usage(alice, tokens=999)  # today: not rolled up (read live)
    tasks.usage_rollup_recent.apply().get()
    first = _daily()
    assert first == [
        (yesterday - timedelta(days=1), bob.pk, "smollm2:135m", "web", 1, 3, 4),
        (yesterday, alice.pk, "smollm2:135m", "web", 2, 75, 75),
        (yesterday, bob.pk, "smollm2:135m", "openai", 1, 5, 5),
    ]
    tasks.usage_rollup_recent.apply().get()
    assert _daily() == first  # twice is the same as once
    # A record that arrives late for yesterday is picked up on the next run.
    seed_usage(bob, tokens=2, at=now - timedelta(days=1), source=UsageSource.OPENAI)
    tasks.usage_rollup_recent.apply().get()
    assert (yesterday, bob.pk, "smollm2:135m", "openai", 2, 6, 6) in _daily()
    assert len(_daily()) == 3


def test_the_command_backfills_every_day_since_the_first_record(alice: AbstractUser) -> None:
    seed_usage(alice, tokens=10, at=timezone.now() - timedelta(days=20))
    call_command("usage_rollup")
    assert UsageDaily.objects.count() == 1


def test_the_beat_schedule_runs_the_rollup() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["usage-rollup"]
    assert entry["task"] == "usage.tasks.usage_rollup_recent"
    assert entry["task"] == tasks.usage_rollup_recent.name


def test_usage_records_are_read_only_in_djangos_admin(admin_user: AbstractUser, alice: AbstractUser) -> None:
    record = seed_usage(alice, tokens=10)
    client = Client()
    client.force_login(admin_user)
    assert client.get("/admin/accounts/usagerecord/").status_code == 200
    assert client.get("/admin/accounts/usagerecord/add/").status_code == 403
    change = client.get(f"/admin/accounts/usagerecord/{record.pk}/change/")
    assert change.status_code == 200  # view only
    assert 'name="_save"' not in change.content.decode()
    assert client.post(f"/admin/accounts/usagerecord/{record.pk}/change/", {"prompt_tokens": 0}).status_code == 403
    assert client.post(f"/admin/accounts/usagerecord/{record.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(
        "/admin/accounts/usagerecord/", {"action": "delete_selected", "_selected_action": [record.pk], "post": "yes"}
    ).status_code in (200, 302)
    assert UsageRecord.objects.get(pk=record.pk).prompt_tokens == 5
