"""Reads of the directory. Searches are server-side and bounded: the pages never load every
user or group of an installation."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from django.contrib.auth.models import Group, User
from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from .models import Invitation, Profile

#: Rows a search suggestion list returns (the datalists of the pickers).
SUGGESTIONS = 20
#: What a query string may be: longer is not a name anyone types.
MAX_QUERY = 100


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class InvitationNotFound(Exception):
    """Unknown or guessed token (a 404)."""


class InvitationGone(Exception):
    """Used, revoked or expired (a 410), with the reason to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class UserFilters:
    query: str = ""
    status: str = ""  # "" | active | inactive | pending
    admin: str = ""  # "" | yes | no
    group: int | None = None


def _pending() -> Exists:
    return Exists(Profile.objects.filter(user_id=OuterRef("pk"), pending=True))


def users_for_admin(*, filters: UserFilters) -> QuerySet[User]:
    """The users page: search in username, name and email, then the filters; newest first."""
    users = User.objects.annotate(is_pending=_pending())
    query = filters.query.strip()[:MAX_QUERY]
    for word in query.split()[:5]:
        users = users.filter(
            Q(username__icontains=word) | Q(first_name__icontains=word) | Q(last_name__icontains=word) | Q(email__icontains=word)
        )
    if filters.status == "active":
        users = users.filter(is_active=True, is_pending=False)
    elif filters.status == "inactive":
        users = users.filter(is_active=False)
    elif filters.status == "pending":
        users = users.filter(is_pending=True)
    if filters.admin == "yes":
        users = users.filter(is_staff=True)
    elif filters.admin == "no":
        users = users.filter(is_staff=False)
    if filters.group is not None:
        users = users.filter(pk__in=User.groups.through.objects.filter(group_id=filters.group).values("user_id"))
    return users.order_by("-date_joined", "-pk")


def pending_users() -> QuerySet[User]:
    """The approval queue, oldest sign-up first."""
    return User.objects.filter(directory_profile__pending=True).select_related("directory_profile").order_by(
        "directory_profile__registered_at"
    )


def get_user_for_admin(*, user_id: int | str) -> User | None:
    try:
        pk = int(user_id)
    except (TypeError, ValueError):
        return None
    return User.objects.annotate(is_pending=_pending()).filter(pk=pk).first()


def user_suggestions(*, query: str) -> list[dict[str, str]]:
    """Users whose name starts with (or contains) what was typed, for a datalist."""
    query = query.strip()[:MAX_QUERY]
    if not query:
        return []
    users = (
        User.objects.filter(is_active=True)
        .filter(Q(username__icontains=query) | Q(first_name__icontains=query) | Q(last_name__icontains=query) | Q(email__icontains=query))
        .order_by("username")[:SUGGESTIONS]
    )
    return [{"value": u.username, "label": u.get_full_name() or u.email} for u in users]


def group_suggestions(*, query: str) -> list[dict[str, str]]:
    query = query.strip()[:MAX_QUERY]
    if not query:
        return []
    return [{"value": g.name, "label": ""} for g in Group.objects.filter(name__icontains=query).order_by("name")[:SUGGESTIONS]]


def groups_for_admin(*, query: str = "") -> QuerySet[Group]:
    groups = Group.objects.annotate(member_count=Count("user", distinct=True))
    query = query.strip()[:MAX_QUERY]
    if query:
        groups = groups.filter(name__icontains=query)
    return groups.order_by("name")


def group_members(*, group: Group, query: str = "") -> QuerySet[User]:
    members = group.user_set.all()
    query = query.strip()[:MAX_QUERY]
    if query:
        members = members.filter(Q(username__icontains=query) | Q(first_name__icontains=query) | Q(last_name__icontains=query))
    return members.order_by("username")


def get_group(*, group_id: int | str) -> Group | None:
    try:
        pk = int(group_id)
    except (TypeError, ValueError):
        return None
    return Group.objects.filter(pk=pk).first()


def invitations_open() -> QuerySet[Invitation]:
    return Invitation.objects.open().select_related("created_by").prefetch_related("groups").order_by("-created_at")


def invitation_for_token(*, token: str) -> Invitation:
    """The open invitation this token opens. The token is looked up by its hash (an index),
    and the stored hash compared again in constant time."""
    if not token or len(token) > 100:
        raise InvitationNotFound
    wanted = token_hash(token)
    invitation = Invitation.objects.filter(token_hash=wanted).first()
    if invitation is None or not hmac.compare_digest(invitation.token_hash, wanted):
        raise InvitationNotFound
    if invitation.accepted_at is not None:
        raise InvitationGone("used")
    if invitation.revoked_at is not None:
        raise InvitationGone("revoked")
    if invitation.is_expired:
        raise InvitationGone("expired")
    return invitation
