"""Names typed into an "add people / groups" box: split them, then find them in one query.

Used by the model access form (models_admin) and the directory's user and group pages, which
word their own errors: this module only splits and looks up.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db.models import Model, QuerySet

#: How many names one box takes: each one missing costs a case-insensitive query.
MAX_NAMES = 200

M = TypeVar("M", bound=Model)


def split_names(raw: str, *, spaces: bool) -> list[str]:
    """Comma- (and, for usernames, space-) separated names, in order, without repeats."""
    parts = raw.replace("\n", ",").split(",")
    if spaces:
        parts = [word for part in parts for word in part.split()]
    names: list[str] = []
    for part in parts:
        name = " ".join(part.split())
        if name and name not in names:
            names.append(name)
    return names


def find_by_name(queryset: QuerySet[M], field: str, names: list[str]) -> tuple[list[M], list[str]]:
    """``(found, missing)``: the rows of ``queryset`` whose ``field`` is one of ``names``,
    in the order typed, matching case-insensitively, and the names matching nothing.

    One ``__in`` query for the names typed exactly; a second, bounded pass (at most
    ``MAX_NAMES`` queries, the callers refuse more names) for names typed in another case.
    """
    found: dict[str, M] = {}
    for row in queryset.filter(**{f"{field}__in": names}):
        found[str(_value(row, field)).lower()] = row
    missing: list[str] = []
    for name in names:
        if name.lower() in found:
            continue
        match = queryset.filter(**{f"{field}__iexact": name}).first()
        if match is None:
            missing.append(name)
        else:
            found[name.lower()] = match
    return [found[n.lower()] for n in names if n.lower() in found], missing


def _value(row: Any, field: str) -> Any:
    return getattr(row, field)
