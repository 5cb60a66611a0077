"""What the directory adds to Django's users and groups: the approval flag of self-registered
accounts, invitations, and which sessions belong to whom."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from projects.models import ProjectRole


class Profile(models.Model):
    """Only accounts that signed themselves up have one (``pending`` until approved)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="directory_profile")
    pending = models.BooleanField(default=True)
    registered_at = models.DateTimeField(auto_now_add=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["pending", "registered_at"], name="directory_pending_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} ({'pending' if self.pending else 'approved'})"


class InvitationQuerySet(models.QuerySet["Invitation"]):
    def open(self) -> InvitationQuerySet:
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now())


class Invitation(models.Model):
    """A single-use sign-up link. Only the SHA-256 of its secret is stored (like API keys):
    the secret has 256 random bits, so an indexed lookup by hash is safe and cheap."""

    token_hash = models.CharField(max_length=64, unique=True)
    email = models.EmailField(_("email"), blank=True)
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    groups = models.ManyToManyField("auth.Group", blank=True, related_name="+")

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"invitation {self.pk} ({self.email or 'no email'})"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()


class InvitationProject(models.Model):
    """A project the invitee joins on accepting, in this role."""

    invitation = models.ForeignKey(Invitation, on_delete=models.CASCADE, related_name="projects")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    role = models.CharField(max_length=10, choices=ProjectRole.choices, default=ProjectRole.EDITOR)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["invitation", "project"], name="unique_invitation_project")]


class UserSession(models.Model):
    """A session a user signed in with (recorded on sign-in), so that deactivating them can
    end every one of them without scanning the whole session table."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    session_key = models.CharField(max_length=40, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["user", "created_at"], name="directory_session_user_idx")]
