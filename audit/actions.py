"""What each audit action is called in the log's own words (the code stays in the entry and the CSV)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

LABELS = {
    "account.deleted": _("Account deleted"),
    "apikey.created": _("API key created"),
    "apikey.revoked": _("API key revoked"),
    "audit.exported": _("Audit log exported"),
    "conversation.read_by_admin": _("Conversation read by an admin"),
    "data.exported": _("Data exported"),
    "data.imported": _("Data imported"),
    "endpoint.add": _("Engine server added"),
    "endpoint.delete": _("Engine server removed"),
    "group.created": _("Group created"),
    "group.deleted": _("Group deleted"),
    "group.member_removed": _("Removed from a group"),
    "group.members_added": _("Added to a group"),
    "group.renamed": _("Group renamed"),
    "invite.accepted": _("Invitation accepted"),
    "invite.revoked": _("Invitation revoked"),
    "model.access": _("Model access changed"),
    "model.context": _("Model context changed"),
    "model.copy": _("Model copied"),
    "model.create": _("Model created"),
    "model.delete": _("Model deleted"),
    "model.set_default": _("Default model set"),
    "project.retention_changed": _("Project retention changed"),
    "pull.cancel": _("Download cancelled"),
    "pull.start": _("Download started"),
    "quota.changed": _("Quota changed"),
    "retention.purged": _("Old conversations deleted"),
    "share.created": _("Conversation shared"),
    "share.revoked": _("Sharing stopped"),
    "sharelink.created": _("Share link created"),
    "sharelink.revoked": _("Share link revoked"),
    "signin.failed": _("Sign-in failed"),
    "signin.header_untrusted": _("Untrusted sign-in header"),
    "signin.locked_out": _("Sign-in locked out"),
    "signin.sso_refused": _("Single sign-on refused"),
    "signin.succeeded": _("Signed in"),
    "user.admin_granted": _("Admin rights granted"),
    "user.admin_revoked": _("Admin rights removed"),
    "user.approved": _("Sign-up approved"),
    "user.created": _("User created"),
    "user.deactivated": _("User deactivated"),
    "user.groups_changed": _("Groups changed"),
    "user.invited": _("User invited"),
    "user.password_reset_link": _("Password reset link made"),
    "user.reactivated": _("User reactivated"),
    "user.registered": _("Signed up"),
    "user.rejected": _("Sign-up refused"),
}


def action_label(action: str) -> str:
    """The action's name for people; an action this table does not know shows its code."""
    return str(LABELS.get(action, action))
