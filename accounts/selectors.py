"""Reads of API keys, always through the ownership check.

``get_api_key_for_user`` is the one permission helper for keys: the key pages fetch through
it. ``api_key_for_secret`` is how the API turns a presented secret into a key.
"""

from __future__ import annotations

import hashlib

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from .models import ApiKey

UserLike = AbstractBaseUser | AnonymousUser


class ApiKeyNotFound(Exception):
    """Missing, revoked and not-yours look the same from outside."""


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_keys_for_user(*, user: UserLike) -> QuerySet[ApiKey]:
    """The user's keys that still work, newest first."""
    if not user.is_authenticated:
        return ApiKey.objects.none()
    return ApiKey.objects.filter(user_id=user.pk, revoked_at__isnull=True).order_by("-created_at")


def get_api_key_for_user(*, user: UserLike, key_id: int | str) -> ApiKey:
    try:
        pk = int(key_id)
    except (TypeError, ValueError) as exc:
        raise ApiKeyNotFound from exc
    key = api_keys_for_user(user=user).filter(pk=pk).first()
    if key is None:
        raise ApiKeyNotFound
    return key


def api_key_for_secret(*, secret: str) -> ApiKey | None:
    """The working key with this secret, with its user, or None (revoked, inactive user, unknown)."""
    if not secret or len(secret) > 200:
        return None
    return ApiKey.objects.active().select_related("user").filter(hashed_key=hash_secret(secret)).first()
