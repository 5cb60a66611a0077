"""Sharing a conversation: with named colleagues (read or write), and by snapshot links
that any signed-in user of this installation can open (never anonymous ones)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.services import audit_record

from .. import events
from ..access import secret_hash
from ..models import Conversation, ConversationShare, SharePermission, ShareLink
from .conversations import ChatError


def _colleague(name: str) -> User:
    name = name.strip()
    UserModel = get_user_model()
    user = (
        UserModel.objects.filter(is_active=True, username__iexact=name).first()
        or (UserModel.objects.filter(is_active=True, email__iexact=name).first() if "@" in name else None)
    )
    if user is None:
        raise ChatError(_("There is no active user called “%(name)s”.") % {"name": name[:150]})
    return user


def share_add(
    *, conversation: Conversation, shared_by: User, username: str, permission: str, address: str = ""
) -> ConversationShare:
    """Share with a colleague, or change what they may do (one share per person)."""
    if permission not in SharePermission.values:
        raise ChatError(_("Choose “Can read” or “Can write”."))
    colleague = _colleague(username)
    if colleague.pk == conversation.owner_id:
        raise ChatError(_("This is already their conversation."))
    with transaction.atomic():
        share, created = ConversationShare.objects.update_or_create(
            conversation=conversation,
            user=colleague,
            defaults={"permission": permission, "shared_by": shared_by},
        )
        if created:
            events.after_commit(
                [events.user_group(colleague.pk)],
                events.relay({"type": "conversation", "id": str(conversation.id), "action": "shared",
                              "title": conversation.title, "by": shared_by.get_username()}),
            )
        events.access_changed(user_ids=[colleague.pk])
        audit_record(actor=shared_by, action="share.created" if created else "share.changed",
                     target=f"conversation {conversation.id}",
                     detail={"with": colleague.get_username(), "permission": permission}, address=address)
    return share


def share_remove(*, conversation: Conversation, user_id: int, actor: User | None = None, address: str = "") -> bool:
    with transaction.atomic():
        deleted, _rows = ConversationShare.objects.filter(conversation=conversation, user_id=user_id).delete()
        if deleted:
            events.after_commit(
                [events.user_group(user_id)],
                events.relay({"type": "conversation", "id": str(conversation.id), "action": "unshared"}),
            )
            events.access_changed(user_ids=[user_id])
            colleague = get_user_model().objects.filter(pk=user_id).values_list("username", flat=True).first()
            audit_record(actor=actor, action="share.revoked", target=f"conversation {conversation.id}",
                         detail={"with": colleague or user_id}, address=address)
    return bool(deleted)


@dataclass(frozen=True)
class NewShareLink:
    link: ShareLink
    token: str  # shown once: only its hash is stored


def share_link_create(*, conversation: Conversation, created_by: User, address: str = "") -> NewShareLink:
    """A snapshot of the conversation's current branch, as it is now."""
    if conversation.current_leaf_id is None:
        raise ChatError(_("There is nothing to share yet: send a message first."))
    key = secrets.token_urlsafe(9)[:12]
    secret = secrets.token_urlsafe(32)
    link = ShareLink.objects.create(
        conversation=conversation,
        key=key,
        secret_hash=secret_hash(secret),
        up_to_id=conversation.current_leaf_id,
        title=conversation.title,
        created_by=created_by,
    )
    audit_record(actor=created_by, action="sharelink.created", target=f"conversation {conversation.id}",
                 detail={"link": link.pk, "key": key}, address=address)
    return NewShareLink(link=link, token=f"{key}.{secret}")


def share_link_revoke(
    *, conversation: Conversation, link_id: object, actor: User | None = None, address: str = ""
) -> bool:
    if not isinstance(link_id, int) or isinstance(link_id, bool):
        return False
    revoked = bool(
        ShareLink.objects.filter(conversation=conversation, pk=link_id, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    )
    if revoked:
        audit_record(actor=actor, action="sharelink.revoked", target=f"conversation {conversation.id}",
                     detail={"link": link_id}, address=address)
    return revoked
