"""Reads of the audit log: the filtered entries, newest first."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils import timezone

from .models import AuditEntry


@dataclass(frozen=True)
class AuditFilter:
    action: str = ""  # a prefix: "signin" matches signin.succeeded and signin.failed
    actor: str = ""  # a username, exactly (case-insensitive)
    since: dt.date | None = None  # from the start of this day
    until: dt.date | None = None  # to the end of this day
    text: str = ""  # a part of the target

    def query(self) -> dict[str, str]:
        """The filter as URL parameters (for the next page and the CSV link)."""
        values = {
            "action": self.action,
            "actor": self.actor,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "q": self.text,
        }
        return {key: value for key, value in values.items() if value}


def _start_of(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def audit_entries(*, filters: AuditFilter) -> QuerySet[AuditEntry]:
    entries = AuditEntry.objects.all()
    if filters.action:
        entries = entries.filter(action__startswith=filters.action)
    if filters.actor:
        entries = entries.filter(actor_name__iexact=filters.actor)
    if filters.since:
        entries = entries.filter(created_at__gte=_start_of(filters.since))
    if filters.until:
        entries = entries.filter(created_at__lt=_start_of(filters.until + dt.timedelta(days=1)))
    if filters.text:
        entries = entries.filter(target__icontains=filters.text)
    return entries.order_by("-id")


def audit_page(*, filters: AuditFilter, before: int | None, size: int) -> tuple[list[AuditEntry], int | None]:
    """One page, older than entry ``before`` (keyset: no OFFSET); and the cursor of the next."""
    entries = audit_entries(filters=filters)
    if before is not None:
        entries = entries.filter(id__lt=before)
    rows = list(entries[: size + 1])
    return rows[:size], (rows[size - 1].pk if len(rows) > size else None)
