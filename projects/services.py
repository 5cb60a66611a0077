"""Writes to projects and their members: one function per state change, every interface calls these.

Membership changes tell the affected users' open sockets to re-check their access at once
(``access_changed_for``) and their sidebars what happened (``type: project`` frames), both
after commit so that nobody hears of a change that rolled back.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import User
from django.db import transaction
from django.utils.translation import gettext as _

from audit.services import audit_record
from models_admin.models import LLMModel
from webio.groups import access_changed_for, after_commit, relay, user_group

from .models import Membership, Project, ProjectRole

NAME_MAX = Project._meta.get_field("name").max_length or 120
DESCRIPTION_MAX = Project._meta.get_field("description").max_length or 2000
INSTRUCTIONS_MAX = Project._meta.get_field("instructions").max_length or 20000


class ProjectError(Exception):
    """A refused project action, with a message a person can read."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _announce(user_ids: Iterable[int], project: Project, action: str, **extra: str) -> None:
    """Tell these users' sidebars (every open socket of theirs) about the project, after commit."""
    frame = {"type": "project", "action": action, "id": str(project.id), "name": project.name, **extra}
    after_commit([user_group(u) for u in user_ids], relay(frame))


def _clean_fields(*, name: str, description: str, instructions: str) -> tuple[str, str, str]:
    name = " ".join(name.split())
    if not name:
        raise ProjectError(_("Give the project a name."))
    if len(name) > NAME_MAX:
        raise ProjectError(_("The name can be at most %(n)d characters long.") % {"n": NAME_MAX})
    description = description.strip()
    if len(description) > DESCRIPTION_MAX:
        raise ProjectError(_("The description can be at most %(n)d characters long.") % {"n": DESCRIPTION_MAX})
    instructions = instructions.strip()
    if len(instructions) > INSTRUCTIONS_MAX:
        raise ProjectError(_("The instructions can be at most %(n)d characters long.") % {"n": INSTRUCTIONS_MAX})
    return name, description, instructions


def _check_model(*, user: User, model: LLMModel | None, keep: LLMModel | None = None) -> None:
    # The model access rule decides which models a person may pick; ``keep`` is the current
    # default, which an owner may leave as it is even if it was picked by someone else.
    if model is None or (keep is not None and model.pk == keep.pk):
        return
    if not LLMModel.objects.usable_by(user).filter(pk=model.pk).exists():
        raise ProjectError(_("The model “%(name)s” is not available to you.") % {"name": model.full_name})


def project_create(
    *,
    creator: User,
    name: str,
    description: str = "",
    instructions: str = "",
    default_model: LLMModel | None = None,
) -> Project:
    """A new project; its creator becomes its owner."""
    name, description, instructions = _clean_fields(name=name, description=description, instructions=instructions)
    _check_model(user=creator, model=default_model)
    with transaction.atomic():
        project = Project.objects.create(
            name=name, description=description, instructions=instructions, default_model=default_model, created_by=creator
        )
        Membership.objects.create(project=project, user=creator, role=ProjectRole.OWNER)
        access_changed_for([creator.pk])
        _announce([creator.pk], project, "added")
    return project


def project_update(
    *,
    project: Project,
    actor: User,
    name: str,
    description: str,
    instructions: str,
    default_model: LLMModel | None,
) -> Project:
    """Change the project's details; members' sidebars hear of a new name."""
    name, description, instructions = _clean_fields(name=name, description=description, instructions=instructions)
    _check_model(user=actor, model=default_model, keep=project.default_model)
    renamed = name != project.name
    with transaction.atomic():
        project.name = name
        project.description = description
        project.instructions = instructions
        project.default_model = default_model
        project.save(update_fields=["name", "description", "instructions", "default_model", "updated_at"])
        if renamed:
            _announce(_member_ids(project), project, "renamed")
    return project


def project_retention_set(*, project: Project, actor: User, retention_days: int | None, address: str = "") -> Project:
    """Set how many days untouched conversations are kept (None: the installation's policy)."""
    if retention_days is not None and retention_days < 0:
        raise ProjectError(_("The number of days cannot be negative."))
    if retention_days != project.retention_days:
        before = project.retention_days
        project.retention_days = retention_days
        project.save(update_fields=["retention_days", "updated_at"])
        audit_record(actor=actor, action="project.retention_changed", target=f"project {project.id} ({project.name})",
                     detail={"before": before, "after": retention_days}, address=address)
    return project


def _member_ids(project: Project) -> list[int]:
    return list(Membership.objects.filter(project=project).values_list("user_id", flat=True))


def _lock_owners(project: Project) -> list[int]:
    """The owners' ids, with their rows locked until the end of the transaction, so that two
    owners demoting each other at the same moment cannot leave the project with none."""
    return list(
        Membership.objects.select_for_update()
        .filter(project=project, role=ProjectRole.OWNER)
        .order_by("pk")
        .values_list("user_id", flat=True)
    )


def _last_owner_error() -> ProjectError:
    return ProjectError(
        _("A project needs an owner. Transfer ownership to another member first, or delete the project.")
    )


def member_add(*, project: Project, user: User, role: ProjectRole | str) -> Membership:
    """Make ``user`` a member of the project in ``role``."""
    role = ProjectRole(role)
    if not user.is_active:
        raise ProjectError(_("This account is deactivated."))
    with transaction.atomic():
        if Membership.objects.filter(project=project, user_id=user.pk).exists():
            raise ProjectError(
                _("%(name)s is already a member of this project.") % {"name": user.get_username()}
            )
        membership = Membership.objects.create(project=project, user=user, role=role)
        access_changed_for([user.pk])
        _announce([user.pk], project, "added")
    return membership


def member_set_role(*, project: Project, user: User, role: ProjectRole | str) -> Membership:
    """Give a member another role; the last owner keeps theirs."""
    role = ProjectRole(role)
    with transaction.atomic():
        owners = _lock_owners(project)
        membership = Membership.objects.select_for_update().filter(project=project, user_id=user.pk).first()
        if membership is None:
            raise ProjectError(_("%(name)s is not a member of this project.") % {"name": user.get_username()})
        if membership.role == role:
            return membership
        if owners == [user.pk] and role != ProjectRole.OWNER:
            raise _last_owner_error()
        membership.role = role
        membership.save(update_fields=["role"])
        access_changed_for([user.pk])
    return membership


def _remove(project: Project, user: User) -> None:
    owners = _lock_owners(project)
    if owners == [user.pk]:
        raise _last_owner_error()
    deleted, _rows = Membership.objects.filter(project=project, user_id=user.pk).delete()
    if not deleted:
        raise ProjectError(_("%(name)s is not a member of this project.") % {"name": user.get_username()})
    access_changed_for([user.pk])
    _announce([user.pk], project, "removed")


def memberships_release(*, user: User) -> dict[str, list[str]]:
    """Before ``user``'s account is deleted: hand each project they alone own to its longest-
    standing other member (as owner), delete the projects nobody else is in, drop the rest of
    their memberships. Returns the project ids handed over and deleted, for the audit entry."""
    handed: list[str] = []
    deleted: list[str] = []
    with transaction.atomic():
        owned = Membership.objects.filter(user_id=user.pk, role=ProjectRole.OWNER).values_list("project_id", flat=True)
        for project_id in list(owned):
            project = Project.objects.get(pk=project_id)
            if _lock_owners(project) != [user.pk]:
                continue
            heir = Membership.objects.filter(project=project).exclude(user_id=user.pk).order_by("added_at", "pk").first()
            if heir is None:
                project.delete()
                deleted.append(str(project_id))
                continue
            heir.role = ProjectRole.OWNER
            heir.save(update_fields=["role"])
            access_changed_for([heir.user_id])
            handed.append(str(project_id))
        Membership.objects.filter(user_id=user.pk).delete()
        access_changed_for([user.pk])
    return {"handed_over": handed, "deleted": deleted}


def member_remove(*, project: Project, user: User) -> None:
    """Take ``user`` out of the project; the conversations they started stay in it."""
    with transaction.atomic():
        _remove(project, user)


def project_leave(*, project: Project, user: User) -> None:
    """The user leaves the project (the last owner cannot: the project would have none)."""
    with transaction.atomic():
        _remove(project, user)


def ownership_transfer(*, project: Project, from_user: User, to_user: User) -> None:
    """``to_user`` (already a member) becomes an owner; ``from_user`` steps down to editor."""
    if from_user.pk == to_user.pk:
        raise ProjectError(_("Choose another member to hand the project to."))
    with transaction.atomic():
        owners = _lock_owners(project)
        if from_user.pk not in owners:
            raise ProjectError(_("Only an owner can transfer ownership."))
        updated = Membership.objects.filter(project=project, user_id=to_user.pk).update(role=ProjectRole.OWNER)
        if not updated:
            raise ProjectError(
                _("%(name)s is not a member of this project. Add them first.") % {"name": to_user.get_username()}
            )
        Membership.objects.filter(project=project, user_id=from_user.pk).update(role=ProjectRole.EDITOR)
        access_changed_for([from_user.pk, to_user.pk])


def project_delete(*, project: Project) -> None:
    """Delete the project for everyone. Its conversations are kept: ``Conversation.project``
    is SET_NULL, so each goes back to its author as a private chat."""
    with transaction.atomic():
        members = _member_ids(project)
        # Before the delete: the frame needs the id and the name.
        _announce(members, project, "deleted")
        project.delete()
        access_changed_for(members)
