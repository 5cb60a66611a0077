"""Writes: usage records and API keys. Every interface calls these, nothing writes inline."""

from __future__ import annotations

import secrets
import string
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import ApiKey, UsageOutcome, UsageRecord, UsageSource
from .selectors import hash_secret

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
) -> UsageRecord:
    """Store one request's usage; ``generation.run`` (and embeddings) call this, once each."""
    return UsageRecord.objects.create(
        user_id=user_id,
        model_name=model_name[:300],
        source=source,
        prompt_tokens=max(0, prompt_tokens),
        completion_tokens=max(0, completion_tokens),
        outcome=outcome,
    )


def api_key_create(*, user: AbstractBaseUser, name: str) -> tuple[ApiKey, str]:
    """Make a key; returns it and its secret, which is not stored and cannot be shown again."""
    secret = KEY_PREFIX + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(_KEY_LENGTH))
    key = ApiKey.objects.create(
        user_id=user.pk,
        name=name.strip()[:100],
        prefix=secret[:SHOWN_PREFIX_LENGTH],
        hashed_key=hash_secret(secret),
    )
    return key, secret


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
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
