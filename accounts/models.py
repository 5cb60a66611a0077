from __future__ import annotations

from django.conf import settings
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
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The table keeps the name it had when this model lived in ``inference``: moving the
        # model between apps must not copy or recreate a table that may hold millions of rows.
        db_table = "inference_usagerecord"
        indexes = [models.Index(fields=["user", "model_name", "created_at"], name="inference_u_user_id_cae869_idx")]


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
