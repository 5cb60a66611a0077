"""Reads for the project pages, each bounded (a page at a time) and already access-checked
by the caller through ``projects.access``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.paginator import Page, Paginator
from django.db.models import Case, Count, IntegerField, Max, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce, Greatest
from django.utils.translation import gettext as _

from models_admin.models import LLMModel

from .access import UserLike, projects_for_user
from .models import ROLE_RANK, Membership, Project

PROJECTS_PER_PAGE = 50
CONVERSATIONS_PER_PAGE = 50
MEMBERS_PER_PAGE = 100


def my_projects_page(*, user: User, page: str | int | None) -> Page[Any]:
    """The user's projects, most recently active first, each with ``my_role``,
    ``conversation_count`` and ``last_activity`` (a conversation's or the project's own)."""
    my_role = Membership.objects.filter(project=OuterRef("pk"), user_id=user.pk).values("role")[:1]
    projects = (
        projects_for_user(user=user)
        .annotate(
            my_role=Subquery(my_role),
            conversation_count=Count("conversations", distinct=True),
            last_activity=Greatest(Coalesce(Max("conversations__updated_at"), "updated_at"), "updated_at"),
        )
        .order_by("-last_activity", "name", "pk")
    )
    return Paginator(projects, PROJECTS_PER_PAGE).get_page(page)


def project_conversations_page(*, project: Project, page: str | int | None) -> Page[Any]:
    """The conversations in the project, newest activity first, with their authors."""
    # Through the reverse relation: projects sits below chat and must not import it.
    conversations = project.conversations.select_related("owner").order_by("-updated_at", "-pk")
    return Paginator(conversations, CONVERSATIONS_PER_PAGE).get_page(page)


def _by_role() -> Case:
    return Case(*[When(role=role, then=Value(-rank)) for role, rank in ROLE_RANK.items()], output_field=IntegerField())


def project_members(*, project: Project) -> QuerySet[Membership]:
    """Members, owners first, then by name."""
    return project.memberships.select_related("user").order_by(_by_role(), "user__username")


def project_members_page(*, project: Project, page: str | int | None) -> Page[Membership]:
    return Paginator(project_members(project=project), MEMBERS_PER_PAGE).get_page(page)


def models_for_project_form(*, user: UserLike, current: LLMModel | None = None) -> QuerySet[LLMModel]:
    """The models a person may pick as a project's default: those they may use, plus the
    current default (kept even if they could not pick it themselves)."""
    usable = LLMModel.objects.usable_by(user)
    if current is None:
        return usable.order_by("name", "tag")
    return LLMModel.objects.filter(Q(pk__in=usable.values("pk")) | Q(pk=current.pk)).order_by("name", "tag")


class UserNotFound(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def user_by_name_or_email(*, who: str) -> User:
    """The active account with this username (exactly, else ignoring case) or email address."""
    who = who.strip()
    users = User.objects.filter(is_active=True)
    if not who:
        raise UserNotFound(_("Type a username or an email address."))
    exact = users.filter(username=who).first()
    if exact is not None:
        return exact
    found = list(users.filter(username__iexact=who)[:2]) or list(users.filter(email__iexact=who)[:2])
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise UserNotFound(_("Several accounts match “%(who)s”; type the exact username.") % {"who": who})
    raise UserNotFound(_("Nobody here is called “%(who)s”. Check the username or email address.") % {"who": who})
