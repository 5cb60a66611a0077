"""Celery tasks of the chat app: thin, they call a service."""

from __future__ import annotations

from celery import shared_task

from . import retention


@shared_task(acks_late=True, ignore_result=True, expires=6 * 3600)
def retention_purge() -> int:
    """Nightly (``CELERY_BEAT_SCHEDULE``): delete conversations past their retention."""
    return retention.retention_purge().deleted
