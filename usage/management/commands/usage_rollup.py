"""Recompute the daily usage rollups for a range of days (backfill after an upgrade, or after
a beat scheduler was down for longer than two days)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Min
from django.utils import timezone

from accounts.models import UsageRecord
from usage.services import usage_rollup_range


class Command(BaseCommand):
    help = "Recompute the daily usage rollups (default: every day since the first usage record)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", help="first day, YYYY-MM-DD (default: the first record's day)")
        parser.add_argument("--until", help="last day, YYYY-MM-DD (default: yesterday)")

    def handle(self, *args: Any, **options: Any) -> None:
        yesterday = timezone.localdate() - timedelta(days=1)
        try:
            since = date.fromisoformat(options["since"]) if options["since"] else None
            until = date.fromisoformat(options["until"]) if options["until"] else yesterday
        except ValueError as exc:
            raise CommandError(f"not a date (YYYY-MM-DD): {exc}") from exc
        if since is None:
            first = UsageRecord.objects.aggregate(first=Min("created_at"))["first"]
            if first is None:
                self.stdout.write("No usage records yet.")
                return
            since = timezone.localdate(first)
        done = usage_rollup_range(start=since, end=until)
        self.stdout.write(f"Rolled up {len(done)} days ({sum(done.values())} rows).")
