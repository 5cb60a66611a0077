"""The dashboard's cost does not grow with the raw usage records: with 200,000 records over
60 past days, rolled up, it runs the same number of queries as with a handful, and no query
reads raw records other than today's (through the created_at index)."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import AbstractUser
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import UsageDaily, UsageRecord
from tests.conftest import make_user
from tests.quotas.helpers import seed_usage
from usage.services import usage_rollup_range

pytestmark = pytest.mark.django_db

RECORDS = 200_000
DAYS = 60
MODELS = ["smollm2:135m", "llama3:8b", "qwen2.5:7b"]
SOURCES = ["web", "ollama", "openai"]


def _dashboard(client: Client) -> tuple[list[str], float]:
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        for by in ("user", "group", "model", "project", "source"):
            assert client.get("/admin/usage/", {"by": by}).status_code == 200
        elapsed = time.perf_counter() - started
    return [q["sql"] for q in queries.captured_queries], elapsed


def _raw_reads(statements: list[str]) -> list[str]:
    return [s for s in statements if re.search(r'FROM "inference_usagerecord"', s)]


def test_the_dashboard_reads_rollups_not_raw_rows(admin_user: AbstractUser) -> None:
    users = [make_user(f"user{n}") for n in range(20)]
    client = Client()
    client.force_login(admin_user)
    today = timezone.localdate()
    for n, user in enumerate(users):  # a handful of records, so both runs draw the same chart lines
        seed_usage(user, tokens=10, at=timezone.now() - timedelta(days=1 + n % 3), model=MODELS[n % 3])
    usage_rollup_range(start=today - timedelta(days=DAYS), end=today - timedelta(days=1))
    few_statements, few_seconds = _dashboard(client)

    # 200k records spread over the past 60 days (created_at is set on insert, so set it per day after).
    UsageRecord.objects.bulk_create(
        (
            UsageRecord(user_id=users[n % 20].pk, model_name=MODELS[n % 3], source=SOURCES[n % 3 - 1],
                        prompt_tokens=10, completion_tokens=n % 50)
            for n in range(RECORDS)
        ),
        batch_size=10_000,
    )
    first = UsageRecord.objects.order_by("pk").values_list("pk", flat=True).first() or 0
    per_day = RECORDS // DAYS + 1
    now = timezone.now()
    for d in range(DAYS):
        start = first + d * per_day
        UsageRecord.objects.filter(pk__gte=start, pk__lt=start + per_day).update(created_at=now - timedelta(days=d + 1))
    started = time.perf_counter()
    usage_rollup_range(start=today - timedelta(days=DAYS), end=today - timedelta(days=1))
    rollup_seconds = time.perf_counter() - started
    assert UsageDaily.objects.count() >= DAYS * 60  # 20 users x 3 models (each with its interface) a day

    many_statements, many_seconds = _dashboard(client)
    print(f"\n5 dashboard views: {few_seconds:.3f} s with 20 records, {many_seconds:.3f} s with {RECORDS:,}; "
          f"rollup of {DAYS} days: {rollup_seconds:.2f} s; {len(many_statements)} queries")
    assert len(many_statements) == len(few_statements)
    # Raw records are read only for today, bounded by the created_at index.
    for sql in _raw_reads(many_statements):
        assert '"inference_usagerecord"."created_at" >=' in sql, sql
    # Generous bound for a shared CI machine: five page views with 200k records behind them.
    assert many_seconds < 5.0
