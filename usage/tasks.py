"""Scheduled work (Celery beat, see CELERY_BEAT_SCHEDULE): the daily usage rollups."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(acks_late=True)
def usage_rollup_recent() -> dict[str, int]:
    """Recompute the last days' rollups; idempotent, so a retry or a double run is harmless."""
    return services.usage_rollup_recent()
