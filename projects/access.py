"""The one access helper for projects: every page, endpoint and socket asks ``project_role``.

Missing and not-a-member look the same from outside (``ProjectNotFound``, a 404); a member
without the role an action needs gets ``ProjectForbidden`` (a 403 saying so).
"""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from .models import ROLE_RANK, Membership, Project, ProjectRole

UserLike = AbstractBaseUser | AnonymousUser


class ProjectNotFound(Exception):
    """No such project, or the user is not a member: the same answer either way."""


class ProjectForbidden(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def project_role(*, user: UserLike, project: Project) -> ProjectRole | None:
    """The user's role in the project, or None. Uses prefetched memberships when present."""
    if not user.is_authenticated:
        return None
    cache = getattr(project, "_prefetched_objects_cache", {}).get("memberships")
    if cache is not None:
        found = next((m for m in cache if m.user_id == user.pk), None)
        return ProjectRole(found.role) if found else None
    role = Membership.objects.filter(project=project, user_id=user.pk).values_list("role", flat=True).first()
    return ProjectRole(role) if role else None


def at_least(role: ProjectRole | None, needed: ProjectRole) -> bool:
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[needed]


def projects_for_user(*, user: UserLike) -> QuerySet[Project]:
    if not user.is_authenticated:
        return Project.objects.none()
    return Project.objects.filter(memberships__user_id=user.pk)


def get_project(*, user: UserLike, project_id: uuid.UUID | str, needed: ProjectRole = ProjectRole.VIEWER) -> tuple[Project, ProjectRole]:
    """The project and the user's role in it, if they hold at least ``needed``."""
    try:
        key = uuid.UUID(str(project_id))
    except ValueError as exc:
        raise ProjectNotFound from exc
    project = Project.objects.select_related("default_model").filter(pk=key).first()
    if project is None:
        raise ProjectNotFound
    role = project_role(user=user, project=project)
    if role is None:
        raise ProjectNotFound
    if not at_least(role, needed):
        raise ProjectForbidden(
            _("This needs the role “%(needed)s” in this project; your role is “%(role)s”.")
            % {"needed": ProjectRole(needed).label, "role": role.label}
        )
    return project, role
