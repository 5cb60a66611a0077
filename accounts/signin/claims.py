"""Reading what a provider says about a person: username, email, names, groups, admin."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Bounds on what one sign-in may write: a provider (or a proxy header) listing thousands of
# groups is cut off, and a group name longer than auth.Group's column is skipped.
MAX_GROUPS = 200
MAX_GROUP_NAME = 150
MAX_USERNAME = 150

_TRUE_STRINGS = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Identity:
    """A person as a sign-in path reports them; ``groups`` None means "not reported"."""

    username: str
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    groups: tuple[str, ...] | None = None
    is_admin: bool | None = None  # None: no admin mapping is configured


def group_names(value: Any) -> tuple[str, ...] | None:
    """A groups claim or header: a list of names, or one comma-separated string."""
    if value is None:
        return None
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        return None
    names: list[str] = []
    for item in items:
        if not isinstance(item, str):
            continue
        name = item.strip()
        if name and len(name) <= MAX_GROUP_NAME and name not in names:
            names.append(name)
        if len(names) >= MAX_GROUPS:
            break
    return tuple(names)


def truthy(value: Any) -> bool:
    """An admin claim: true, "true", 1, or a non-empty list (Entra's "roles" style)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in _TRUE_STRINGS
    if isinstance(value, (list, tuple)):
        return len(value) > 0
    return False


def admin_from(*, groups: tuple[str, ...] | None, admin_group: str, claims: Mapping[str, Any] | None = None,
               admin_claim: str = "") -> bool | None:
    """Whether the person is an admin by the configured mapping; None when none is configured."""
    if not admin_group and not admin_claim:
        return None
    in_group = bool(admin_group) and admin_group in (groups or ())
    by_claim = bool(admin_claim) and claims is not None and truthy(claims.get(admin_claim))
    return in_group or by_claim


def identity_from_claims(claims: Mapping[str, Any], *, username_claim: str, groups_claim: str,
                         admin_group: str, admin_claim: str) -> Identity | None:
    """The person an OpenID provider's claims describe; None without a usable username."""
    username = claims.get(username_claim)
    if not isinstance(username, str) or not username.strip() or len(username.strip()) > MAX_USERNAME:
        return None
    groups = group_names(claims.get(groups_claim)) if groups_claim else None
    first = claims.get("given_name") if isinstance(claims.get("given_name"), str) else ""
    last = claims.get("family_name") if isinstance(claims.get("family_name"), str) else ""
    if not first and not last and isinstance(claims.get("name"), str):
        first, _, last = str(claims["name"]).partition(" ")
    email = claims.get("email") if isinstance(claims.get("email"), str) else ""
    return Identity(
        username=username.strip(),
        email=str(email)[:254],
        first_name=str(first)[:150],
        last_name=str(last)[:150],
        groups=groups,
        is_admin=admin_from(groups=groups, admin_group=admin_group, claims=claims, admin_claim=admin_claim),
    )


def email_domain_allowed(email: str, allowed: list[str]) -> bool:
    """With OIDC_ALLOWED_DOMAINS set, only emails in those domains (e.g. a Google Workspace)."""
    if not allowed:
        return True
    _, at, domain = email.rpartition("@")
    return bool(at) and domain.lower() in allowed
