"""The one write every sign-in path makes: the account, its profile, groups and admin flag."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.db import transaction

from audit.services import audit_record

from .claims import Identity


def signin_user_find(*, username: str) -> AbstractUser | None:
    """The account with this username (case-insensitive: providers vary the case of UPNs)."""
    users = list(get_user_model().objects.filter(username__iexact=username)[:2])
    if len(users) == 1:
        return users[0]
    # Two accounts differing only in case: the exact one, else nobody (refuse rather than guess).
    exact = [u for u in users if u.get_username() == username]
    return exact[0] if len(exact) == 1 else None


def signin_user_create(*, identity: Identity, source: str, create_groups: bool, address: str = "") -> AbstractUser:
    """A new account for someone the provider vouches for; it has no usable password."""
    with transaction.atomic():
        user: AbstractUser = get_user_model().objects.create_user(
            username=identity.username,
            email=identity.email,
            first_name=identity.first_name,
            last_name=identity.last_name,
        )
        audit_record(actor=None, action="user.created", target=user.username,
                     detail={"user_id": user.pk, "source": source}, address=address)
        signin_user_sync(user=user, identity=identity, source=source, create_groups=create_groups, address=address)
    return user


def signin_user_sync(
    *, user: AbstractUser, identity: Identity, source: str, create_groups: bool, address: str = ""
) -> AbstractUser:
    """Bring the account in line with the provider: email and names, groups, admin."""
    with transaction.atomic():
        fields = [
            name for name in ("email", "first_name", "last_name")
            if getattr(identity, name) and getattr(user, name) != getattr(identity, name)
        ]
        for name in fields:
            setattr(user, name, getattr(identity, name))
        admin_change = (
            identity.is_admin is not None
            and identity.is_admin != user.is_staff
            # A superuser made on this server stays an admin whatever the provider says.
            and not (user.is_superuser and not identity.is_admin)
        )
        if admin_change:
            user.is_staff = bool(identity.is_admin)
            fields.append("is_staff")
        if fields:
            user.save(update_fields=fields)
        if admin_change:
            audit_record(
                actor=None, action="user.admin_granted" if user.is_staff else "user.admin_revoked",
                target=user.username, detail={"user_id": user.pk, "source": source}, address=address,
            )
        if identity.groups is not None:
            _sync_groups(user=user, names=identity.groups, create=create_groups, source=source, address=address)
    return user


def _sync_groups(*, user: AbstractUser, names: tuple[str, ...], create: bool, source: str, address: str) -> None:
    """Make the account's groups exactly the provider's; missing groups are made or skipped."""
    wanted = {g.name: g for g in Group.objects.filter(name__in=names)}
    created = []
    if create:
        for name in names:
            if name not in wanted:
                wanted[name], made = Group.objects.get_or_create(name=name)
                if made:
                    created.append(name)
    current = {g.name: g for g in user.groups.all()}
    added = sorted(set(wanted) - set(current))
    removed = sorted(set(current) - set(wanted))
    if added:
        user.groups.add(*(wanted[n] for n in added))
    if removed:
        user.groups.remove(*(current[n] for n in removed))
    for name in created:
        audit_record(actor=None, action="group.created", target=name, detail={"source": source}, address=address)
    if added or removed:
        audit_record(
            actor=None, action="user.groups_changed", target=user.username,
            detail={"user_id": user.pk, "added": added, "removed": removed, "source": source}, address=address,
        )
