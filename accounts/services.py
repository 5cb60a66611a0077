"""Writes: usage records and API keys. Every interface calls these, nothing writes inline."""

from __future__ import annotations

import secrets
import string
import uuid
from collections.abc import Mapping
from datetime import date, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.services import audit_record

from .models import ApiKey, Preferences, Quota, UsageDaily, UsageOutcome, UsageRecord, UsageSource
from .selectors import day_bounds, hash_secret

KEY_PREFIX = "sk-plat-"
# 43 characters from 62 give 256 bits. Letters and digits only, so a double-click selects
# the whole key and it can sit in a URL path (/u/<key>/) without escaping.
_KEY_ALPHABET = string.ascii_letters + string.digits
_KEY_LENGTH = 43
SHOWN_PREFIX_LENGTH = 12
# last_used_at is written at most this often per key, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def usage_record(
    *,
    user_id: int,
    model_name: str,
    source: UsageSource,
    prompt_tokens: int,
    completion_tokens: int,
    outcome: UsageOutcome = UsageOutcome.COMPLETE,
    project_id: uuid.UUID | str | None = None,
) -> UsageRecord:
    """Store one request's usage; ``generation.run`` (and embeddings) call this, once each."""
    return UsageRecord.objects.create(
        user_id=user_id,
        model_name=model_name[:300],
        source=source,
        prompt_tokens=max(0, prompt_tokens),
        completion_tokens=max(0, completion_tokens),
        outcome=outcome,
        project_id=project_id,
    )


def usage_rollup_day(*, day: date) -> int:
    """Recompute one day's ``UsageDaily`` rows from the raw records (replacing them, so running
    it twice gives the same rows); returns how many rows the day has now."""
    start, end = day_bounds(day)
    groups = (
        UsageRecord.objects.filter(created_at__gte=start, created_at__lt=end)
        .values("user_id", "model_name", "source", "project_id")
        .annotate(requests=Count("id"), prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"))
        .order_by()
    )
    rows = [
        UsageDaily(
            day=day,
            user_id=g["user_id"],
            model_name=g["model_name"],
            source=g["source"],
            project_id=g["project_id"],
            requests=g["requests"],
            prompt_tokens=g["prompt"] or 0,
            completion_tokens=g["completion"] or 0,
        )
        for g in groups.iterator()
    ]
    with transaction.atomic():
        UsageDaily.objects.filter(day=day).delete()
        UsageDaily.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def quota_set(*, owner: AbstractBaseUser | Group, limits: Mapping[str, int | None]) -> tuple[dict[str, int | None], dict[str, int | None]]:
    """Set a user's or a group's limits (only the names in ``Quota.LIMITS``; None: not set).
    All None removes the quota. Returns the limits before and after."""
    lookup = {"group": owner} if isinstance(owner, Group) else {"user_id": owner.pk}
    with transaction.atomic():
        quota = Quota.objects.select_for_update().filter(**lookup).first()
        before = {name: getattr(quota, name) if quota else None for name in Quota.LIMITS}
        after = {name: limits.get(name) for name in Quota.LIMITS}
        if all(value is None for value in after.values()):
            if quota is not None:
                quota.delete()
        else:
            if quota is None:
                quota = Quota(**lookup)
            for name, value in after.items():
                setattr(quota, name, value)
            quota.save()
    return before, after


def api_key_create(*, user: AbstractBaseUser, name: str, address: str = "") -> tuple[ApiKey, str]:
    """Make a key; returns it and its secret, which is not stored and cannot be shown again."""
    secret = KEY_PREFIX + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(_KEY_LENGTH))
    key = ApiKey.objects.create(
        user_id=user.pk,
        name=name.strip()[:100],
        prefix=secret[:SHOWN_PREFIX_LENGTH],
        hashed_key=hash_secret(secret),
    )
    audit_record(actor=user, action="apikey.created", target=f"{key.name} ({key.prefix}…)",
                 detail={"key": key.pk, "owner": user.get_username()}, address=address)
    return key, secret


def api_key_revoke(
    *, api_key: ApiKey, actor: AbstractBaseUser | AnonymousUser | None = None, address: str = ""
) -> ApiKey:
    """Revoke the key (once); ``actor`` is who did it, the key's owner when not given."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        audit_record(actor=actor or api_key.user, action="apikey.revoked", target=str(api_key),
                     detail={"key": api_key.pk, "owner": api_key.user.get_username()}, address=address)
    return api_key


def api_key_mark_used(*, api_key: ApiKey) -> None:
    """Record that the key was used, at most once a minute (no write per request)."""
    now = timezone.now()
    stale = now - LAST_USED_RESOLUTION
    if api_key.last_used_at is not None and api_key.last_used_at >= stale:
        return
    # Conditional, so concurrent requests in several processes write once between them.
    ApiKey.objects.filter(pk=api_key.pk).filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale)).update(
        last_used_at=now
    )
    api_key.last_used_at = now


class UserCreateError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def user_create(*, username: str, password: str | None, is_admin: bool = False) -> tuple[AbstractBaseUser, str]:
    """Create an account; returns it and its password (generated when none is given)."""
    User = get_user_model()
    username = username.strip()
    if not username:
        raise UserCreateError("The username cannot be empty.")
    if User.objects.filter(username=username).exists():
        raise UserCreateError(f"A user called {username!r} already exists.")
    password = password or secrets.token_urlsafe(15)
    candidate = User(username=username)
    try:
        validate_password(password, user=candidate)
    except ValidationError as exc:
        raise UserCreateError(" ".join(exc.messages)) from exc
    with transaction.atomic():
        if is_admin:
            user = User.objects.create_superuser(username=username, email="", password=password)
        else:
            user = User.objects.create_user(username=username, email="", password=password)
    return user, password


def language_set(*, user: AbstractBaseUser, language: str) -> None:
    """Store the language ``user`` reads the platform in; "" follows the browser again."""
    from .language import supported

    if language and not supported(language):
        raise ValidationError(_("This language is not available."), code="invalid")
    Preferences.objects.update_or_create(user_id=user.pk, defaults={"language": language})
