"""Retention: delete conversations nobody has touched for longer than their policy allows.

The policy of a conversation is its project's ``retention_days`` when the project sets one
(0 keeps it forever), otherwise the installation's ``RETENTION_DAYS`` (0 keeps it forever).
"Touched" is ``updated_at``: a new message, a rename, a move. Deletion goes in batches of
``BATCH`` and stops after ``MAX_PER_RUN`` conversations; the rest go the next night, so one
run is bounded whatever the backlog. Each batch re-checks the cut-off, so a conversation
touched while the run goes is kept, and running twice deletes nothing more (idempotent).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from audit.services import audit_record
from projects.models import Project

from . import events
from .models import Conversation

BATCH = 200
MAX_PER_RUN = 100_000


@dataclass
class PurgeResult:
    deleted: int = 0
    global_deleted: int = 0
    # Project id -> conversations deleted under that project's own policy.
    by_project: dict[str, int] = field(default_factory=dict)
    capped: bool = False  # stopped at MAX_PER_RUN: more remain for the next run


def _delete_in_batches(conversations: QuerySet[Conversation], budget: int) -> int:
    """Delete the matching conversations, ``BATCH`` at a time, at most ``budget`` of them."""
    deleted = 0
    while deleted < budget:
        ids = list(conversations.order_by("updated_at").values_list("pk", flat=True)[: min(BATCH, budget - deleted)])
        if not ids:
            break
        with transaction.atomic():
            # Filtered again: one touched since the ids were read is no longer a match.
            _total, by_model = conversations.filter(pk__in=ids).delete()
            # Sockets still open on one (a tab left open for months) re-check and close.
            events.after_commit([events.conversation_group(i) for i in ids], events.ACCESS_CHANGED)
        # ``delete`` counts the cascaded messages and shares too: count conversations only.
        gone = by_model.get(Conversation._meta.label, 0)
        deleted += gone
        if gone == 0:  # every one was touched meanwhile: stop rather than spin
            break
    return deleted


def retention_purge(*, now: dt.datetime | None = None, max_per_run: int = MAX_PER_RUN) -> PurgeResult:
    """Apply every retention policy once; one audit entry per run that had a policy to apply."""
    now = now or timezone.now()
    result = PurgeResult()
    projects = list(Project.objects.filter(retention_days__gt=0).values_list("pk", "retention_days").order_by("pk"))
    for project_id, days in projects:
        assert days is not None  # filtered on retention_days > 0
        budget = max_per_run - result.deleted
        if budget <= 0:
            result.capped = True
            break
        old = Conversation.objects.filter(project_id=project_id, updated_at__lt=now - dt.timedelta(days=days))
        count = _delete_in_batches(old, budget)
        if count:
            result.by_project[str(project_id)] = count
            result.deleted += count
    global_days = settings.RETENTION_DAYS
    if global_days > 0 and not result.capped:
        budget = max_per_run - result.deleted
        old = Conversation.objects.filter(
            Q(project__isnull=True) | Q(project__retention_days__isnull=True),
            updated_at__lt=now - dt.timedelta(days=global_days),
        )
        result.global_deleted = _delete_in_batches(old, budget)
        result.deleted += result.global_deleted
    if result.deleted >= max_per_run:
        result.capped = True
    if projects or global_days > 0:
        audit_record(
            actor=None,
            action="retention.purged",
            target="conversations",
            detail={
                "deleted": result.deleted,
                "global_days": global_days,
                "global_deleted": result.global_deleted,
                "projects": result.by_project,
                "capped": result.capped,
            },
        )
    return result
