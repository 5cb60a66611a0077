"""The audit trail of admin actions, and the "models changed" notice to the admin pages."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from audit.services import audit_record

from ..models import AdminAction
from ..progress import ModelsChangedEvent, notify_admins
from .errors import UserLike, actor_id


def admin_action_record(*, actor: UserLike, action: str, target: str, details: dict[str, Any] | None = None) -> AdminAction:
    # The platform-wide audit log gets every admin action too (the page at /admin/audit/);
    # AdminAction stays as the models pages' own history.
    audit_record(actor=actor, action=action, target=target, detail=details)
    return AdminAction.objects.create(
        actor_id=actor_id(actor),
        actor_name=actor.get_username() if actor is not None and actor.is_authenticated else "",
        action=action,
        target=target[:1000],
        details=details or {},
    )


def models_changed(reason: str) -> None:
    event: ModelsChangedEvent = {"type": "models", "reason": reason}
    transaction.on_commit(lambda: notify_admins(event))
