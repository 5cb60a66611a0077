"""Writes of the usage app: quotas set by admins (audited) and the daily rollups."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from django.db import transaction
from django.utils import timezone

from accounts.services import quota_set, usage_rollup_day
from audit.services import audit_record

# Days before today that every scheduled run recomputes: yesterday is final once it is over,
# the day before covers a beat that was down around midnight. Older days: `usage_rollup`.
RECENT_DAYS = 2


def quota_change(
    *,
    actor: AbstractBaseUser | AnonymousUser,
    owner: AbstractBaseUser | Group,
    limits: Mapping[str, int | None],
    address: str = "",
) -> bool:
    """Set a user's or group's quota and record ``quota.changed`` when it changed; returns
    whether it did."""
    with transaction.atomic():
        before, after = quota_set(owner=owner, limits=limits)
        if before == after:
            return False
        is_group = isinstance(owner, Group)
        target = f"group:{owner.name}" if is_group else f"user:{owner.get_username()}"  # type: ignore[union-attr]
        detail: dict[str, Any] = {"before": before, "after": after, "id": owner.pk}
        audit_record(actor=actor, action="quota.changed", target=target, detail=detail, address=address)
    return True


def usage_rollup_recent(*, today: date | None = None) -> dict[str, int]:
    """Recompute the rollups of the last RECENT_DAYS days before today (idempotent)."""
    today = today or timezone.localdate()
    return usage_rollup_range(start=today - timedelta(days=RECENT_DAYS), end=today - timedelta(days=1))


def usage_rollup_range(*, start: date, end: date) -> dict[str, int]:
    """Recompute every day from ``start`` to ``end`` (inclusive); returns rows per day."""
    done: dict[str, int] = {}
    day = start
    while day <= end:
        done[day.isoformat()] = usage_rollup_day(day=day)
        day += timedelta(days=1)
    return done
