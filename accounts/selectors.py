"""Reads of API keys, always through the ownership check, and of quotas and usage.

``get_api_key_for_user`` is the one permission helper for keys: the key pages fetch through
it. ``api_key_for_secret`` is how the API turns a presented secret into a key.
``effective_quota`` is the one rule for combining a user's and their groups' limits;
``tokens_used`` counts a user's tokens of today and of this month from the usage records.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import F, Q, QuerySet, Sum
from django.utils import timezone

from .models import ApiKey, Preferences, Quota, UsageDaily, UsageRecord

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


def user_is_pending(*, user: UserLike) -> bool:
    """Whether this account signed itself up and still waits for an administrator's approval.

    The one test for it: the page middleware, the chat's access helper (sockets) and the API's
    authentication all ask here. The flag lives on ``directory.Profile`` (looked up by its
    relation, not imported: directory sits above this layer). Approval only ever clears it,
    so a "no" is remembered on the user object and costs one query per object at most.
    """
    if not user.is_authenticated:
        return False
    if getattr(user, "_approved", False):
        return False
    pending = get_user_model()._default_manager.filter(pk=user.pk, directory_profile__pending=True).exists()
    if not pending:
        setattr(user, "_approved", True)
    return pending


# ---- Quotas and usage ---------------------------------------------------------------------------


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The first instant of ``day`` and of the next, in the platform's time zone (TIME_ZONE)."""
    zone = timezone.get_current_timezone()
    start = timezone.make_aware(datetime.combine(day, time.min), zone)
    return start, timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min), zone)


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


@dataclass(frozen=True)
class Limit:
    """One effective limit: its value (None: unlimited) and where it comes from."""

    value: int | None
    # "user" (the person's own quota), "group" (then ``group`` names it) or "" (not set).
    origin: str = ""
    group: str = ""


@dataclass(frozen=True)
class EffectiveQuota:
    tokens_per_day: Limit = field(default_factory=lambda: Limit(None))
    tokens_per_month: Limit = field(default_factory=lambda: Limit(None))
    requests_per_minute: Limit = field(default_factory=lambda: Limit(None))
    concurrent_answers: Limit = field(default_factory=lambda: Limit(None))

    @property
    def counts_tokens(self) -> bool:
        return self.tokens_per_day.value is not None or self.tokens_per_month.value is not None


def effective_quota(*, user_id: int) -> EffectiveQuota:
    """The limits that apply to this user, in one query.

    For each limit on its own: the user's own quota wins when it sets that limit (higher or
    lower than their groups'); otherwise the most permissive value among their groups that set
    it (groups grant, as model access does: joining a group never lowers an allowance);
    otherwise no limit.
    """
    quotas = list(Quota.objects.filter(Q(user_id=user_id) | Q(group__user=user_id)).select_related("group"))
    own = next((q for q in quotas if q.user_id == user_id), None)
    groups = sorted((q for q in quotas if q.group_id is not None), key=lambda q: q.group.name if q.group else "")
    limits: dict[str, Limit] = {}
    for name in Quota.LIMITS:
        if own is not None and getattr(own, name) is not None:
            limits[name] = Limit(getattr(own, name), "user")
            continue
        best: Quota | None = None
        for quota in groups:
            value = getattr(quota, name)
            if value is not None and (best is None or value > getattr(best, name)):
                best = quota
        if best is not None:
            limits[name] = Limit(getattr(best, name), "group", best.group.name if best.group else "")
    return EffectiveQuota(**limits)


@dataclass(frozen=True)
class TokensUsed:
    today: int
    month: int


_TOKENS = F("prompt_tokens") + F("completion_tokens")


def tokens_used(*, user_id: int, now: datetime | None = None) -> TokensUsed:
    """This user's tokens of today and of this month (the platform's time zone), in two
    indexed queries: raw records since yesterday began (the daily rollup may not have run
    for it yet), rollups for the month's earlier days."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    first = month_start(today)
    today_start = day_bounds(today)[0]
    raw_from = max(first, today - timedelta(days=1))
    raw = UsageRecord.objects.filter(user_id=user_id, created_at__gte=day_bounds(raw_from)[0]).aggregate(
        today=Sum(_TOKENS, filter=Q(created_at__gte=today_start)), recent=Sum(_TOKENS)
    )
    rolled = 0
    if raw_from > first:
        rolled = (
            UsageDaily.objects.filter(user_id=user_id, day__gte=first, day__lt=raw_from).aggregate(
                total=Sum(F("prompt_tokens") + F("completion_tokens"))
            )["total"]
            or 0
        )
    return TokensUsed(today=raw["today"] or 0, month=rolled + (raw["recent"] or 0))


def language_of(user: AbstractBaseUser) -> str:
    """The language ``user`` chose, or "" to follow the browser."""
    return Preferences.objects.filter(user_id=user.pk).values_list("language", flat=True).first() or ""
