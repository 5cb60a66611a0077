"""Seeding usage and quotas for the quota and dashboard tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, Group

from accounts.models import Quota, UsageRecord, UsageSource
from accounts.services import usage_record


def seed_usage(
    user: AbstractBaseUser,
    *,
    tokens: int,
    at: datetime | None = None,
    model: str = "smollm2:135m",
    source: UsageSource = UsageSource.WEB,
    project_id: Any = None,
) -> UsageRecord:
    """One usage record as ``generation.run`` writes it (half prompt, half completion);
    ``at`` moves it in time (created_at is set on insert, so tests move it afterwards)."""
    record = usage_record(
        user_id=int(user.pk),  # type: ignore[arg-type]
        model_name=model,
        source=source,
        prompt_tokens=tokens // 2,
        completion_tokens=tokens - tokens // 2,
        project_id=project_id,
    )
    if at is not None:
        UsageRecord.objects.filter(pk=record.pk).update(created_at=at)
        record.refresh_from_db()
    return record


def group_quota(name: str, members: list[AbstractBaseUser], **limits: int) -> Group:
    group = Group.objects.create(name=name)
    group.user_set.add(*members)
    Quota.objects.create(group=group, **limits)
    return group


def user_quota(user: AbstractBaseUser, **limits: int) -> Quota:
    return Quota.objects.create(user_id=user.pk, **limits)
