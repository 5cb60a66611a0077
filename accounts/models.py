from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils.translation import gettext_lazy as _


class UsageSource(models.TextChoices):
    WEB = "web", _("Web")
    OLLAMA = "ollama", _("Ollama API")
    OPENAI = "openai", _("OpenAI API")


class UsageOutcome(models.TextChoices):
    """How an answer ended. Every ending is charged for what the engine produced."""

    COMPLETE = "complete", _("Complete")
    STOPPED = "stopped", _("Stopped")
    CLIENT_GONE = "client_gone", _("Client went away")
    ERROR = "error", _("Engine error")


class UsageRecord(models.Model):
    """Tokens used by one generation, attributed to its user and model (quotas build on this).

    Written by ``generation.run`` and nothing else: exactly one row per answer, whichever
    interface asked and however the answer ended.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage_records")
    model_name = models.CharField(max_length=300)
    source = models.CharField(max_length=20, choices=UsageSource.choices)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=20, choices=UsageOutcome.choices, default=UsageOutcome.COMPLETE)
    # The conversation's project for browser answers (``projects.Project`` ids; no foreign key,
    # as this app sits below ``projects``: a deleted project leaves its usage in place).
    project_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The table keeps the name it had when this model lived in ``inference``: moving the
        # model between apps must not copy or recreate a table that may hold millions of rows.
        db_table = "inference_usagerecord"
        indexes = [
            models.Index(fields=["user", "model_name", "created_at"], name="inference_u_user_id_cae869_idx"),
            # Quotas sum one user's rows of today (and yesterday); the rollup and the dashboard's
            # "today" read one day of everyone's rows. Both stay bounded with 10 million rows.
            models.Index(fields=["user", "created_at"], name="usage_user_created_idx"),
            models.Index(fields=["created_at"], name="usage_created_idx"),
        ]


class UsageDaily(models.Model):
    """One day's usage per user, model, interface and project: the rollup of ``UsageRecord``.

    Written only by ``accounts.services.usage_rollup_day``, which replaces a whole day's rows,
    so recomputing a day is safe. The usage dashboard and monthly quotas read this table for
    past days and raw records only for today (and yesterday), through the indexes above.
    """

    day = models.DateField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage_days")
    model_name = models.CharField(max_length=300)
    source = models.CharField(max_length=20, choices=UsageSource.choices)
    project_id = models.UUIDField(null=True, blank=True)
    requests = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["day"], name="usage_daily_day_idx"),
            models.Index(fields=["user", "day"], name="usage_daily_user_day_idx"),
        ]


class Quota(models.Model):
    """Limits for one user or one group; a blank limit is not set (see ``selectors.effective_quota``)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="quota"
    )
    group = models.OneToOneField(Group, null=True, blank=True, on_delete=models.CASCADE, related_name="quota")
    tokens_per_day = models.PositiveBigIntegerField(_("tokens per day"), null=True, blank=True)
    tokens_per_month = models.PositiveBigIntegerField(_("tokens per month"), null=True, blank=True)
    requests_per_minute = models.PositiveIntegerField(_("requests per minute"), null=True, blank=True)
    concurrent_answers = models.PositiveIntegerField(_("concurrent answers"), null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    LIMITS = ("tokens_per_day", "tokens_per_month", "requests_per_minute", "concurrent_answers")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(user__isnull=False, group__isnull=True) | models.Q(user__isnull=True, group__isnull=False)),
                name="quota_user_or_group",
            )
        ]

    def __str__(self) -> str:
        return f"quota for {self.user or self.group}"

    @property
    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in self.LIMITS)


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def active(self) -> ApiKeyQuerySet:
        """Keys that authenticate: not revoked, and their user is still active."""
        return self.filter(revoked_at__isnull=True, user__is_active=True)


class ApiKey(models.Model):
    """A personal key for the Ollama/OpenAI API. Only a hash of the secret is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(_("name"), max_length=100)
    # The first characters of the secret, shown in the key list so people can tell keys apart.
    prefix = models.CharField(max_length=16)
    # sha256 of the whole secret, hex. The secret has 256 random bits, so no salt or slow hash
    # is needed, and an indexed equality lookup is all authentication costs.
    hashed_key = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        db_table = "inference_apikey"  # see UsageRecord.Meta
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class Preferences(models.Model):
    """What a person chose for themselves; a blank field follows the default (the browser's)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="preferences"
    )
    language = models.CharField(max_length=10, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.user_id}: {self.language or 'browser'}"
