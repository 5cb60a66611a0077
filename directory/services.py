"""Writes of the directory: every state change of users, groups, invitations and sign-ups.

One function per change, keyword-only, called by the admin pages, the public pages and the
management commands alike. Each records itself in the audit log; what other processes must
hear (open sockets, running answers) is sent after the commit.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from datetime import timedelta
from importlib import import_module

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _

from accounts.models import ApiKey
from audit.services import audit_record
from chat.generation import request_stop
from chat.models import Message, MessageStatus
from projects.models import Project, ProjectRole
from projects.services import ProjectError, member_add
from webio.groups import access_changed_for

from .models import Invitation, InvitationProject, Profile, UserSession
from .selectors import token_hash

# Sessions remembered per user; older rows are pruned on each sign-in (their sessions have
# expired anyway), so deactivation touches a bounded number of rows.
_SESSION_ROWS_KEPT = 200


class DirectoryError(Exception):
    """A refused change, with a message for the person who asked."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# ---- Sessions ---------------------------------------------------------------------------------


def session_remember(*, user: User, session_key: str) -> None:
    """Note that this session is ``user``'s (on every sign-in)."""
    UserSession.objects.update_or_create(session_key=session_key, defaults={"user_id": user.pk})
    stale = UserSession.objects.filter(user_id=user.pk).order_by("-created_at").values_list("pk", flat=True)[_SESSION_ROWS_KEPT:]
    stale_ids = list(stale)
    if stale_ids:
        UserSession.objects.filter(pk__in=stale_ids).delete()


def session_forget(*, session_key: str) -> None:
    UserSession.objects.filter(session_key=session_key).delete()


def _end_sessions(user_id: int) -> int:
    """Delete every remembered session of this user from the session store."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    keys = list(UserSession.objects.filter(user_id=user_id).values_list("session_key", flat=True))
    for key in keys:
        store(session_key=key).delete()
    UserSession.objects.filter(user_id=user_id).delete()
    return len(keys)


# ---- Users ------------------------------------------------------------------------------------


def _check_username(username: str) -> str:
    username = username.strip()
    if not username:
        raise DirectoryError(_("The username cannot be empty."))
    try:
        User.username_validator(username)
    except ValidationError as exc:
        raise DirectoryError(" ".join(exc.messages)) from exc
    if User.objects.filter(username__iexact=username).exists():
        raise DirectoryError(_("The username “%(name)s” is taken.") % {"name": username})
    return username


def _check_password(password: str, user: User) -> None:
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise DirectoryError(" ".join(exc.messages)) from exc


def _new_user(*, username: str, email: str, first_name: str, last_name: str, password: str | None) -> User:
    """An ordinary account (never staff: admin rights are given by ``user_set_admin`` only)."""
    username = _check_username(username)
    candidate = User(username=username, email=email.strip(), first_name=first_name.strip(), last_name=last_name.strip())
    if password:
        _check_password(password, candidate)
        candidate.set_password(password)
    else:
        candidate.set_unusable_password()
    try:
        with transaction.atomic():
            candidate.save()
    except IntegrityError as exc:  # the same name, taken a moment ago
        raise DirectoryError(_("The username “%(name)s” is taken.") % {"name": username}) from exc
    return candidate


def user_create(
    *, by: User, address: str, username: str, email: str = "", first_name: str = "", last_name: str = "", password: str | None = None
) -> User:
    """An admin creates an account; without a password it cannot sign in until it gets one
    (a reset link) or signs in through single sign-on."""
    with transaction.atomic():
        user = _new_user(username=username, email=email, first_name=first_name, last_name=last_name, password=password)
        audit_record(actor=by, action="user.created", target=user.username, detail={"user_id": user.pk}, address=address)
    return user


def user_set_admin(*, user: User, is_admin: bool, by: User, address: str) -> User:
    """Make or unmake an administrator (staff). Nobody removes their own rights: the last
    admin would lock everyone out."""
    if user.pk == by.pk and not is_admin:
        raise DirectoryError(_("You cannot take away your own admin rights. Ask another admin."))
    if user.is_staff == is_admin and (is_admin or not user.is_superuser):
        return user
    with transaction.atomic():
        user.is_staff = is_admin
        fields = ["is_staff"]
        if not is_admin and user.is_superuser:
            user.is_superuser = False
            fields.append("is_superuser")
        user.save(update_fields=fields)
        audit_record(
            actor=by, action="user.admin_granted" if is_admin else "user.admin_revoked", target=user.username,
            detail={"user_id": user.pk}, address=address,
        )
        # Admins may use every model: open chats re-check what this user may do.
        access_changed_for([user.pk])
    return user


def _stop_answers(user_id: int) -> None:
    """Stop every answer this user asked for that is still being written (in any process)."""
    running = list(
        Message.objects.filter(status=MessageStatus.STREAMING, author_id=user_id).values_list("pk", flat=True)[:1000]
    )
    stop = async_to_sync(request_stop)
    for message_id in running:
        stop(message_id)


def user_deactivate(*, user: User, by: User, address: str) -> User:
    """Sign the user out everywhere at once: the account, its sessions, its API keys (refused
    for inactive users), its open sockets (closed with 4403) and its running answers."""
    if user.pk == by.pk:
        raise DirectoryError(_("You cannot deactivate your own account."))
    if not user.is_active:
        return user
    with transaction.atomic():
        user.is_active = False
        user.save(update_fields=["is_active"])
        sessions = _end_sessions(user.pk)
        audit_record(
            actor=by, action="user.deactivated", target=user.username,
            detail={"user_id": user.pk, "sessions_ended": sessions,
                    "api_keys": ApiKey.objects.filter(user_id=user.pk, revoked_at__isnull=True).count()},
            address=address,
        )
        access_changed_for([user.pk])
        user_id = int(user.pk)
        transaction.on_commit(lambda: _stop_answers(user_id))
    return user


def user_reactivate(*, user: User, by: User, address: str) -> User:
    """Let the user sign in again; their API keys work again (none was revoked)."""
    if user.is_active:
        return user
    with transaction.atomic():
        user.is_active = True
        user.save(update_fields=["is_active"])
        audit_record(actor=by, action="user.reactivated", target=user.username, detail={"user_id": user.pk}, address=address)
        access_changed_for([user.pk])
    return user


def password_reset_path(*, user: User, by: User, address: str) -> str:
    """A one-time link to set a new password (Django's token: it stops working once the
    password changes, and after PASSWORD_RESET_TIMEOUT). The admin passes it on."""
    if not user.is_active:
        raise DirectoryError(_("Reactivate the account first."))
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    audit_record(actor=by, action="user.password_reset_link", target=user.username, detail={"user_id": user.pk}, address=address)
    return f"/accounts/reset/{uid}/{token}/"


# ---- Groups -----------------------------------------------------------------------------------


def _group_name(name: str, *, keep: Group | None = None) -> str:
    name = " ".join(name.split())
    if not name:
        raise DirectoryError(_("Give the group a name."))
    if len(name) > 150:
        raise DirectoryError(_("A group name has at most 150 characters."))
    taken = Group.objects.filter(name__iexact=name)
    if keep is not None:
        taken = taken.exclude(pk=keep.pk)
    if taken.exists():
        raise DirectoryError(_("There is already a group called “%(name)s”.") % {"name": name})
    return name


def group_create(*, name: str, by: User, address: str) -> Group:
    with transaction.atomic():
        group = Group.objects.create(name=_group_name(name))
        audit_record(actor=by, action="group.created", target=group.name, detail={"group_id": group.pk}, address=address)
    return group


def group_rename(*, group: Group, name: str, by: User, address: str) -> Group:
    name = _group_name(name, keep=group)
    if name == group.name:
        return group
    with transaction.atomic():
        old, group.name = group.name, name
        group.save(update_fields=["name"])
        audit_record(actor=by, action="group.renamed", target=group.name, detail={"group_id": group.pk, "from": old}, address=address)
    return group


def group_delete(*, group: Group, by: User, address: str) -> None:
    """Delete the group: its members lose what it gave them (model access) at once."""
    with transaction.atomic():
        member_ids = list(group.user_set.values_list("pk", flat=True))
        audit_record(
            actor=by, action="group.deleted", target=group.name,
            detail={"group_id": group.pk, "members": len(member_ids)}, address=address,
        )
        group.delete()
        access_changed_for(member_ids)


def group_members_add(*, group: Group, users: Sequence[User], by: User, address: str) -> list[User]:
    """Add these users to the group; returns the ones who were not members yet."""
    current = set(group.user_set.filter(pk__in=[u.pk for u in users]).values_list("pk", flat=True))
    added = [u for u in users if u.pk not in current]
    if not added:
        return []
    with transaction.atomic():
        group.user_set.add(*added)
        audit_record(
            actor=by, action="group.members_added", target=group.name,
            detail={"group_id": group.pk, "users": [u.username for u in added]}, address=address,
        )
        access_changed_for([u.pk for u in added])
    return added


def group_member_remove(*, group: Group, user: User, by: User, address: str) -> None:
    with transaction.atomic():
        if not group.user_set.filter(pk=user.pk).exists():
            return
        group.user_set.remove(user)
        audit_record(
            actor=by, action="group.member_removed", target=group.name,
            detail={"group_id": group.pk, "user": user.username}, address=address,
        )
        access_changed_for([user.pk])


def user_groups_set(*, user: User, groups: Iterable[Group], by: User, address: str) -> None:
    """Give the user exactly these groups (the user page's group boxes)."""
    wanted = {g.pk: g for g in groups}
    with transaction.atomic():
        current = set(user.groups.values_list("pk", flat=True))
        if current == set(wanted):
            return
        user.groups.set(list(wanted.values()))
        audit_record(
            actor=by, action="user.groups_changed", target=user.username,
            detail={"user_id": user.pk, "groups": sorted(g.name for g in wanted.values())}, address=address,
        )
        access_changed_for([user.pk])


# ---- Invitations ------------------------------------------------------------------------------


def invitation_create(
    *,
    by: User,
    address: str,
    email: str = "",
    note: str = "",
    days: int | None = None,
    groups: Iterable[Group] = (),
    projects: Iterable[tuple[Project, str]] = (),
) -> tuple[Invitation, str]:
    """A single-use link; returns it and its secret token, which is not stored (only its hash)."""
    days = days or settings.INVITATION_DAYS
    if not 1 <= days <= 365:
        raise DirectoryError(_("An invitation is valid for 1 to 365 days."))
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        invitation = Invitation.objects.create(
            token_hash=token_hash(token),
            email=email.strip(),
            note=" ".join(note.split())[:200],
            created_by=by,
            expires_at=timezone.now() + timedelta(days=days),
        )
        invitation.groups.set(list(groups))
        chosen = {project.pk: (project, ProjectRole(role)) for project, role in projects}
        InvitationProject.objects.bulk_create(
            [InvitationProject(invitation=invitation, project=project, role=role) for project, role in chosen.values()]
        )
        audit_record(
            actor=by, action="user.invited", target=invitation.email or str(invitation.pk),
            detail={
                "invitation_id": invitation.pk,
                "days": days,
                "groups": sorted(g.name for g in invitation.groups.all()),
                "projects": {str(p.pk): str(r) for p, r in chosen.values()},
            },
            address=address,
        )
    return invitation, token


def invitation_revoke(*, invitation: Invitation, by: User, address: str) -> None:
    if invitation.revoked_at is not None or invitation.accepted_at is not None:
        return
    with transaction.atomic():
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        audit_record(actor=by, action="invite.revoked", target=invitation.email or str(invitation.pk),
                     detail={"invitation_id": invitation.pk}, address=address)


def invitation_accept(
    *, invitation: Invitation, username: str, password: str, email: str = "", first_name: str = "", last_name: str = "", address: str
) -> User:
    """Create the invitee's account, put it in the invitation's groups and projects, and use
    up the link: the row is locked, so two tabs accepting at once make one account."""
    with transaction.atomic():
        locked = Invitation.objects.select_for_update().filter(pk=invitation.pk).first()
        if locked is None or locked.accepted_at is not None or locked.revoked_at is not None or locked.is_expired:
            raise DirectoryError(_("This invitation has already been used or has expired."))
        user = _new_user(username=username, email=email or locked.email, first_name=first_name, last_name=last_name, password=password)
        user.groups.set(list(locked.groups.all()))
        for entry in locked.projects.select_related("project"):
            try:
                member_add(project=entry.project, user=user, role=entry.role)
            except ProjectError:
                pass  # cannot happen for a brand-new account; never block the sign-up on it
        locked.accepted_at = timezone.now()
        locked.accepted_by = user
        locked.save(update_fields=["accepted_at", "accepted_by"])
        audit_record(actor=user, action="invite.accepted", target=user.username,
                     detail={"invitation_id": locked.pk, "user_id": user.pk}, address=address)
    return user


# ---- Self-registration ------------------------------------------------------------------------


def registration_create(*, username: str, email: str, password: str, first_name: str = "", last_name: str = "", address: str) -> User:
    """A sign-up from /accounts/register/: the account exists but waits for approval."""
    if not settings.REGISTRATION_OPEN:
        raise DirectoryError(_("Sign-up is closed on this server. Ask an administrator for an invitation."))
    with transaction.atomic():
        user = _new_user(username=username, email=email, first_name=first_name, last_name=last_name, password=password)
        Profile.objects.create(user=user, pending=True)
        audit_record(actor=user, action="user.registered", target=user.username, detail={"user_id": user.pk}, address=address)
    return user


def registration_approve(*, user: User, by: User, address: str) -> User:
    with transaction.atomic():
        updated = Profile.objects.filter(user_id=user.pk, pending=True).update(
            pending=False, approved_at=timezone.now(), approved_by=by
        )
        if not updated:
            raise DirectoryError(_("%(name)s is not waiting for approval.") % {"name": user.username})
        audit_record(actor=by, action="user.approved", target=user.username, detail={"user_id": user.pk}, address=address)
        access_changed_for([user.pk])
    return user


def registration_reject(*, user: User, by: User, address: str) -> None:
    """Refuse a sign-up: the waiting account is deleted (it holds nothing yet), which frees
    the name."""
    with transaction.atomic():
        if not Profile.objects.filter(user_id=user.pk, pending=True).exists():
            raise DirectoryError(_("%(name)s is not waiting for approval.") % {"name": user.username})
        _end_sessions(user.pk)
        audit_record(actor=by, action="user.rejected", target=user.username, detail={"user_id": user.pk}, address=address)
        user.delete()
