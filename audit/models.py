"""The audit log: who did what, when, from which address. Rows are written once, never changed."""

from __future__ import annotations

import json
from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AppendOnlyError(Exception):
    """Something tried to change or delete an audit entry."""


class AuditEntryQuerySet(models.QuerySet["AuditEntry"]):
    # Bulk paths refuse too. Django's own deletion of a user nulls ``actor`` through the base
    # manager (a plain QuerySet), which is the one change allowed: ``actor_name`` keeps who it was.
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("audit entries cannot be changed")

    def delete(self) -> NoReturn:
        raise AppendOnlyError("audit entries cannot be deleted")


class AuditEntry(models.Model):
    created_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Copied as text so an entry stays readable after its user is deleted.
    actor_name = models.CharField(_("who"), max_length=150, blank=True, db_index=True)
    # db_index: on PostgreSQL Django adds a pattern-ops index too, which the prefix filter uses.
    action = models.CharField(_("action"), max_length=100, db_index=True)
    target = models.CharField(_("target"), max_length=1000, blank=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    address = models.CharField(_("address"), max_length=45, blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        # Newest first by id: rows are only ever appended, so id order is time order, and the
        # page is keyset-paginated on the primary key (fast with millions of rows); the date
        # and action filters have their own indexes.
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_name or '-'} {self.action} {self.target}"

    @property
    def action_label(self) -> str:
        from .actions import action_label

        return action_label(self.action)

    @property
    def detail_text(self) -> str:
        return json.dumps(self.detail, ensure_ascii=False, sort_keys=True) if self.detail else ""

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("audit entries cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("audit entries cannot be deleted")
