"""A person's data: all of it in one zip, and the deletion of their account.

What the zip holds: ``conversations/`` (every conversation they started, in the export format
``chat.services.imports`` reads back), ``usage.csv`` (their usage records), ``api_keys.json``
(each key's name, prefix and dates: the secrets are never stored, so never exported),
``account.json`` (their profile, groups and projects) and ``activity.csv`` (what the audit log
recorded them doing). Everything is streamed into a spooled file in batches.

Deleting an account deletes the conversations they own (with their messages, shares and
links), their API keys, their memberships (a project they alone own goes to its longest-
standing other member, or is deleted when nobody else is in it) and their usage records.
Their messages in other people's conversations stay there, without an author. The audit
log keeps their name as text.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
import zipfile
from collections.abc import Iterable
from typing import IO, Any

from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import ApiKey, UsageRecord
from audit.csv_export import neutralise
from audit.models import AuditEntry
from audit.services import audit_record
from projects.models import Membership
from projects.services import memberships_release
from webio.groups import access_changed_for

from .. import events
from ..generation import request_stop
from ..models import Conversation, Message, MessageStatus
from . import exports

FORMAT = "private-llm.personal-data"
VERSION = 1
_ROWS_PER_READ = 2000


class AccountDeleteRefused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _stamp(value: Any) -> str | None:
    return value.isoformat() if value else None


def _write_csv(archive: zipfile.ZipFile, name: str, header: list[str], rows: Iterable[list[Any]]) -> int:
    count = 0
    with archive.open(name, mode="w", force_zip64=True) as member, io.TextIOWrapper(member, encoding="utf-8", newline="") as text:
        writer = csv.writer(text)
        writer.writerow(header)
        for row in rows:
            writer.writerow([neutralise(cell) if isinstance(cell, str) else cell for cell in row])
            count += 1
    return count


def _usage_rows(user: User) -> Iterable[list[Any]]:
    records = UsageRecord.objects.filter(user_id=user.pk).order_by("id")
    for record in records.iterator(chunk_size=_ROWS_PER_READ):
        yield [_stamp(record.created_at), record.model_name, record.source, record.prompt_tokens,
               record.completion_tokens, record.outcome]


def _activity_rows(user: User) -> Iterable[list[Any]]:
    entries = AuditEntry.objects.filter(actor_id=user.pk).order_by("id")
    for entry in entries.iterator(chunk_size=_ROWS_PER_READ):
        yield [_stamp(entry.created_at), entry.action, entry.target, entry.detail_text, entry.address]


def _keys(user: User) -> list[dict[str, Any]]:
    return [
        {"name": key.name, "prefix": key.prefix, "created_at": _stamp(key.created_at),
         "last_used_at": _stamp(key.last_used_at), "revoked_at": _stamp(key.revoked_at)}
        for key in ApiKey.objects.filter(user_id=user.pk).order_by("created_at", "id")
    ]


def _account(user: User) -> dict[str, Any]:
    memberships = Membership.objects.filter(user_id=user.pk).select_related("project").order_by("added_at")
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": timezone.now().isoformat(),
        "username": user.get_username(),
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "date_joined": _stamp(user.date_joined),
        "last_login": _stamp(user.last_login),
        "is_admin": user.is_staff,
        "groups": sorted(user.groups.values_list("name", flat=True)),
        "projects": [
            {"id": str(m.project_id), "name": m.project.name, "role": m.role, "since": _stamp(m.added_at)}
            for m in memberships[:10_000]
        ],
    }


def personal_data_zip(*, user: User, actor: User, address: str = "") -> IO[bytes]:
    """Everything the platform holds about ``user``, as a zip at its start (see the module)."""
    out = tempfile.SpooledTemporaryFile(max_size=exports.SPOOL_BYTES)  # noqa: SIM115 (the response closes it)
    with zipfile.ZipFile(out, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
        conversations = exports.write_conversations(archive, user=user, folder="conversations/")
        usage = _write_csv(archive, "usage.csv",
                           ["time", "model", "interface", "prompt_tokens", "completion_tokens", "outcome"],
                           _usage_rows(user))
        keys = _keys(user)
        archive.writestr("api_keys.json", json.dumps(keys, ensure_ascii=False, indent=1))
        archive.writestr("account.json", json.dumps(_account(user), ensure_ascii=False, indent=1))
        _write_csv(archive, "activity.csv", ["time", "action", "target", "detail", "address"], _activity_rows(user))
    out.seek(0)
    audit_record(actor=actor, action="data.exported", target=user.get_username(),
                 detail={"what": "all", "conversations": conversations, "usage_records": usage, "api_keys": len(keys)},
                 address=address)
    return out


def account_counts(*, user: User) -> dict[str, int]:
    """What deleting the account would remove (for the confirmation page)."""
    return {
        "conversations": Conversation.objects.filter(owner_id=user.pk).count(),
        "api_keys": ApiKey.objects.filter(user_id=user.pk).count(),
        "usage_records": UsageRecord.objects.filter(user_id=user.pk).count(),
        "projects": Membership.objects.filter(user_id=user.pk).count(),
    }


def account_delete(*, user: User, actor: User, address: str = "") -> dict[str, int]:
    """Delete ``user`` and what is theirs (see the module); refuses the last active admin."""
    if user.is_superuser and not User.objects.filter(is_superuser=True, is_active=True).exclude(pk=user.pk).exists():
        raise AccountDeleteRefused(_("This is the only administrator: make someone else an administrator first."))
    username = user.get_username()
    streaming = list(Message.objects.filter(status=MessageStatus.STREAMING, author_id=user.pk).values_list("pk", flat=True)[:1000])
    with transaction.atomic():
        owned = Conversation.objects.filter(owner_id=user.pk)
        conversation_ids = list(owned.values_list("pk", flat=True))
        # Open tabs on their conversations (theirs, and colleagues' they were shared with) close.
        for start in range(0, len(conversation_ids), 500):
            batch = conversation_ids[start:start + 500]
            events.after_commit([events.conversation_group(i) for i in batch], events.ACCESS_CHANGED)
        _total, by_model = owned.delete()
        projects = memberships_release(user=user)
        keys = ApiKey.objects.filter(user_id=user.pk).count()
        usage = UsageRecord.objects.filter(user_id=user.pk).count()
        counts = {
            "conversations": by_model.get(Conversation._meta.label, 0),
            "api_keys": keys,
            "usage_records": usage,
            "projects_handed_over": len(projects["handed_over"]),
            "projects_deleted": len(projects["deleted"]),
        }
        audit_record(actor=actor, action="account.deleted", target=username,
                     detail={**counts, "by": "self" if actor.pk == user.pk else "admin"}, address=address)
        user_id = user.pk
        # The keys, usage records and everything else that points at the user go with it (CASCADE).
        user.delete()
        access_changed_for([user_id])  # their open sockets close
    for message_id in streaming:
        async_to_sync(request_stop)(message_id)
    return counts
