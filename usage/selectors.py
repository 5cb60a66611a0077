"""Reads for the usage dashboard and the personal usage page.

Past days come from the daily rollups (``accounts.models.UsageDaily``) only; today comes from
the raw records of today, through the ``created_at`` index. So the work per page grows with the
days shown and the distinct users, models and projects, never with the number of records.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Count, F, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Quota, UsageDaily, UsageRecord, UsageSource
from accounts.selectors import day_bounds
from projects.models import Project

Dimension = Literal["user", "group", "model", "project", "source"]
DIMENSIONS: tuple[Dimension, ...] = ("user", "group", "model", "project", "source")
# What each dimension groups by, the same lookup on the rollups and the raw records.
_FIELDS: dict[Dimension, str] = {
    "user": "user__username",
    "group": "user__groups__name",
    "model": "model_name",
    "project": "project_id",
    "source": "source",
}
MAX_DAYS = 366
CHART_SERIES = 5  # the top values drawn as lines, besides the total
TOP = 10


@dataclass(frozen=True)
class DateRange:
    start: date
    end: date  # inclusive

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


def default_range(*, days: int = 30) -> DateRange:
    today = timezone.localdate()
    return DateRange(today - timedelta(days=days - 1), today)


@dataclass
class Totals:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, requests: int, prompt: int, completion: int) -> None:
        self.requests += requests
        self.prompt_tokens += prompt
        self.completion_tokens += completion


@dataclass
class Row:
    key: Any
    label: str
    totals: Totals = field(default_factory=Totals)


def _rollups(rng: DateRange) -> QuerySet[UsageDaily]:
    today = timezone.localdate()
    return UsageDaily.objects.filter(day__gte=rng.start, day__lte=min(rng.end, today - timedelta(days=1)))


def _today(rng: DateRange) -> QuerySet[UsageRecord] | None:
    today = timezone.localdate()
    if not rng.start <= today <= rng.end:
        return None
    return UsageRecord.objects.filter(created_at__gte=day_bounds(today)[0])


_ROLLED = {"requests": Sum("requests"), "prompt": Sum("prompt_tokens"), "completion": Sum("completion_tokens")}
_RAW = {"requests": Count("id"), "prompt": Sum("prompt_tokens"), "completion": Sum("completion_tokens")}


def _grouped(rng: DateRange, *fields: str) -> Iterator[dict[str, Any]]:
    """Rows of ``fields`` + requests/prompt/completion: the rollups' days, then today's raw rows
    (with ``day`` set to today when asked for)."""
    yield from _rollups(rng).values(*fields).annotate(**_ROLLED).order_by().iterator()
    raw = _today(rng)
    if raw is None:
        return
    today = timezone.localdate()
    raw_fields = [f for f in fields if f != "day"]
    for row in raw.values(*raw_fields).annotate(**_RAW).order_by().iterator():
        if "day" in fields:
            row["day"] = today
        yield row


def _labels(dimension: Dimension, keys: set[Any]) -> dict[Any, str]:
    if dimension == "project":
        ids = [k for k in keys if k is not None]
        names = dict(Project.objects.filter(pk__in=ids).values_list("id", "name")) if ids else {}
        return {k: (names.get(k) or _("(deleted project)")) if k is not None else _("(no project)") for k in keys}
    if dimension == "source":
        return {k: str(UsageSource(k).label) if k in UsageSource.values else str(k) for k in keys}
    if dimension == "group":
        return {k: k if k is not None else _("(no group)") for k in keys}
    return {k: str(k) for k in keys}


def breakdown(rng: DateRange, dimension: Dimension) -> list[Row]:
    """Totals per value of ``dimension`` over the range, most tokens first. A user in several
    groups counts in each of them (group figures use today's memberships)."""
    lookup = _FIELDS[dimension]
    totals: dict[Any, Totals] = defaultdict(Totals)
    for row in _grouped(rng, lookup):
        totals[row[lookup]].add(row["requests"] or 0, row["prompt"] or 0, row["completion"] or 0)
    labels = _labels(dimension, set(totals))
    rows = [Row(key, labels[key], t) for key, t in totals.items()]
    rows.sort(key=lambda r: (-r.totals.tokens, -r.totals.requests, r.label))
    return rows


@dataclass
class Chart:
    """Daily series for uPlot: ``x`` (unix seconds, midnight of each day) and, per series, its
    label, tokens and requests per day."""

    x: list[int]
    labels: list[str]
    tokens: list[list[int]]
    requests: list[list[int]]

    def as_json(self) -> dict[str, Any]:
        return {"x": self.x, "labels": self.labels, "tokens": self.tokens, "requests": self.requests}


def chart(rng: DateRange, dimension: Dimension, top: list[Row]) -> Chart:
    """Total per day, and per day for the ``top`` values of ``dimension`` (at most CHART_SERIES)."""
    days = rng.days
    index = {d: i for i, d in enumerate(days)}
    series = top[:CHART_SERIES]
    lookup = _FIELDS[dimension]
    labels = [_("All")] + [r.label for r in series]
    tokens = [[0] * len(days) for _ in labels]
    requests = [[0] * len(days) for _ in labels]
    for row in _grouped(rng, "day"):
        i = index[row["day"]]
        tokens[0][i] += (row["prompt"] or 0) + (row["completion"] or 0)
        requests[0][i] += row["requests"] or 0
    if series:
        position = {r.key: n + 1 for n, r in enumerate(series)}
        keys = list(position)
        for row in _grouped_in(rng, lookup, keys):
            n, i = position[row[lookup]], index[row["day"]]
            tokens[n][i] += (row["prompt"] or 0) + (row["completion"] or 0)
            requests[n][i] += row["requests"] or 0
    x = [int(day_bounds(d)[0].timestamp()) for d in days]
    return Chart(x=x, labels=labels, tokens=tokens, requests=requests)


def _grouped_in(rng: DateRange, lookup: str, keys: list[Any]) -> Iterator[dict[str, Any]]:
    """Like ``_grouped(rng, "day", lookup)`` for the given values of ``lookup`` only."""
    with_none = None in keys
    values = [k for k in keys if k is not None]
    today = timezone.localdate()
    sources: list[tuple[QuerySet[Any], dict[str, Any], bool]] = [(_rollups(rng), _ROLLED, True)]
    raw = _today(rng)
    if raw is not None:
        sources.append((raw, _RAW, False))
    for queryset, aggregates, has_day in sources:
        condition = Q(**{f"{lookup}__in": values})
        if with_none:
            condition |= Q(**{f"{lookup}__isnull": True})
        fields = ["day", lookup] if has_day else [lookup]
        for row in queryset.filter(condition).values(*fields).annotate(**aggregates).order_by().iterator():
            if not has_day:
                row["day"] = today
            yield row


def export_rows(rng: DateRange, dimension: Dimension) -> Iterator[tuple[date, str, int, int, int]]:
    """(day, value, requests, prompt tokens, completion tokens), for the CSV export."""
    lookup = _FIELDS[dimension]
    rows = list(_grouped(rng, "day", lookup))
    labels = _labels(dimension, {r[lookup] for r in rows})
    rows.sort(key=lambda r: (r["day"], labels[r[lookup]]))
    for r in rows:
        yield r["day"], labels[r[lookup]], r["requests"] or 0, r["prompt"] or 0, r["completion"] or 0


# ---- The quota pages and the personal page -----------------------------------------------------


def groups_with_quotas(*, search: str = "", limit: int = 100) -> list[Group]:
    queryset = Group.objects.select_related("quota").order_by("name")
    if search:
        queryset = queryset.filter(name__icontains=search)
    return list(queryset[:limit])


def users_for_quotas(*, search: str = "", limit: int = 20) -> list[Any]:
    """Users whose name matches ``search`` (or, without one, those with their own quota)."""
    queryset = get_user_model().objects.select_related("quota").order_by("username")
    if search:
        queryset = queryset.filter(username__icontains=search)
    else:
        queryset = queryset.filter(quota__isnull=False)
    return list(queryset[:limit])


def quota_of(owner: Any) -> Quota | None:
    try:
        return owner.quota
    except Quota.DoesNotExist:
        return None


def requests_today(*, user_id: int) -> int:
    return UsageRecord.objects.filter(user_id=user_id, created_at__gte=day_bounds(timezone.localdate())[0]).count()


def personal_chart(*, user_id: int, rng: DateRange) -> Chart:
    days = rng.days
    index = {d: i for i, d in enumerate(days)}
    tokens, requests = [0] * len(days), [0] * len(days)
    for row in _rollups(rng).filter(user_id=user_id).values("day").annotate(**_ROLLED).order_by():
        tokens[index[row["day"]]] += (row["prompt"] or 0) + (row["completion"] or 0)
        requests[index[row["day"]]] += row["requests"] or 0
    raw = _today(rng)
    if raw is not None:
        today = raw.filter(user_id=user_id).aggregate(requests=Count("id"), tokens=Sum(F("prompt_tokens") + F("completion_tokens")))
        i = index[timezone.localdate()]
        tokens[i] += today["tokens"] or 0
        requests[i] += today["requests"] or 0
    x = [int(day_bounds(d)[0].timestamp()) for d in days]
    return Chart(x=x, labels=[_("Tokens")], tokens=[tokens], requests=[requests])
