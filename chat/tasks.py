"""Celery tasks of the chat app: thin, they call a service."""

from __future__ import annotations

from celery import shared_task

from . import retention
from .services import messages_interrupted


@shared_task(acks_late=True, ignore_result=True, expires=6 * 3600)
def retention_purge() -> int:
    """Nightly (``CELERY_BEAT_SCHEDULE``): delete conversations past their retention."""
    return retention.retention_purge().deleted


@shared_task(ignore_result=True, expires=60)
def answers_interrupted() -> int:
    """Every GENERATION_SWEEP_SECONDS (``CELERY_BEAT_SCHEDULE``): finalise answers whose web
    process died mid-answer (their lease ran out), keeping the text so far."""
    return len(messages_interrupted())
