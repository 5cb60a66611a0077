from django.apps import AppConfig


class DirectoryConfig(AppConfig):
    """Users and groups for admins: the users and groups pages, invitations, self-registration
    with an approval queue, deactivation."""

    name = "directory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the session tracking)
