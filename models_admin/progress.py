"""The one bridge from model-management work (Celery pulls, admin actions) to admin sockets.

Everything an admin page hears goes through ``notify_admins`` as an ``AdminEvent``. With Redis
the channel layer reaches the web process from the worker; in embedded mode (in-memory
layer) it cannot, so ``ModelsAdminConsumer`` also polls the pull rows (see consumers.py).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Literal, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from .models import Pull

logger = logging.getLogger(__name__)


def admin_group() -> str:
    """The channel-layer group of the admin pages of this installation.

    Keyed by the database, because group names are global in a Redis server: two
    installations (or test runs) sharing one Redis must not see each other's pulls.
    """
    db = settings.DATABASES["default"]
    key = f"{db.get('HOST', '')}:{db.get('PORT', '')}/{db.get('NAME', '')}"
    return f"models_admin.{hashlib.sha256(key.encode()).hexdigest()[:12]}"


class PullPayload(TypedDict):
    id: int
    source: str
    model_name: str
    kind: str
    status: str
    detail: str
    completed: int
    total: int | None
    speed_bps: float
    eta_seconds: float | None
    error: str
    updated_at: str


class PullEvent(TypedDict):
    type: Literal["pull"]
    pull: PullPayload


class ModelsChangedEvent(TypedDict):
    """The model table changed (added, removed, default or access changed): re-read it."""

    type: Literal["models"]
    reason: str


AdminEvent = PullEvent | ModelsChangedEvent


def pull_payload(pull: Pull) -> PullPayload:
    return {
        "id": pull.id,
        "source": pull.source,
        "model_name": pull.model_name,
        "kind": pull.kind,
        "status": pull.status,
        "detail": pull.detail,
        "completed": pull.completed_bytes,
        "total": pull.total_bytes,
        "speed_bps": round(pull.speed_bps, 1),
        "eta_seconds": round(pull.eta_seconds, 1) if pull.eta_seconds is not None else None,
        "error": pull.error,
        "updated_at": pull.updated_at.isoformat() if pull.updated_at else "",
    }


def pull_event(pull: Pull) -> PullEvent:
    return {"type": "pull", "pull": pull_payload(pull)}


def notify_admins(event: AdminEvent) -> None:
    """Send ``event`` to every open models page; never fails the work that reports it."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(admin_group(), {"type": "admin.event", "event": event})
    except Exception:  # a lost progress message must not fail a pull (Redis down, event loop thread)
        logger.warning("could not notify admin pages of %s", event["type"], exc_info=True)
