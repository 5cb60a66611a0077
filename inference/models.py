from __future__ import annotations

from django.conf import settings
from django.db import models


class UsageSource(models.TextChoices):
    WEB = "web", "Web"
    OLLAMA = "ollama", "Ollama API"
    OPENAI = "openai", "OpenAI API"


class UsageRecord(models.Model):
    """Tokens used by one request, attributed to its user and model (quotas build on this)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage_records")
    model_name = models.CharField(max_length=300)
    source = models.CharField(max_length=20, choices=UsageSource.choices)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["user", "model_name", "created_at"])]
