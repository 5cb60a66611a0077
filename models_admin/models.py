from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Backend(models.TextChoices):
    EMBEDDED = "embedded", _("Embedded (llama.cpp)")
    VLLM = "vllm", _("vLLM / OpenAI-compatible server")


class ModelStatus(models.TextChoices):
    READY = "ready", _("Ready")
    PULLING = "pulling", _("Pulling")
    ERROR = "error", _("Error")


class Access(models.TextChoices):
    EVERYONE = "everyone", _("Everyone")
    RESTRICTED = "restricted", _("Selected users")


class LLMModelQuerySet(models.QuerySet["LLMModel"]):
    def ready(self) -> LLMModelQuerySet:
        return self.filter(status=ModelStatus.READY)

    def usable_by(self, user: object) -> LLMModelQuerySet:
        """Models this user may chat with; the single access rule (groups/projects slot in here)."""
        if getattr(user, "is_staff", False):
            return self.ready()
        user_id = getattr(user, "pk", None)
        if user_id is None:
            return self.none()
        return self.ready().filter(Q(access=Access.EVERYONE) | Q(allowed_users=user_id)).distinct()


class LLMModel(models.Model):
    """A model as users see it: ``name:tag``, served by one engine backend."""

    name = models.CharField(max_length=200)
    tag = models.CharField(max_length=100, default="latest")
    display_name = models.CharField(max_length=200, blank=True)
    backend = models.CharField(max_length=20, choices=Backend.choices, default=Backend.EMBEDDED)
    # Embedded: absolute path of the GGUF file. vLLM: the name the server serves it under.
    file_path = models.CharField(max_length=1000, blank=True)
    upstream_name = models.CharField(max_length=300, blank=True)
    base = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="derived")

    family = models.CharField(max_length=100, blank=True)
    parameter_size = models.CharField(max_length=50, blank=True)
    quantization_level = models.CharField(max_length=50, blank=True)
    format = models.CharField(max_length=50, blank=True, default="gguf")
    size_bytes = models.BigIntegerField(default=0)
    digest = models.CharField(max_length=80, blank=True)
    context_length = models.PositiveIntegerField(default=4096)
    capabilities = models.JSONField(default=list, blank=True)

    # Modelfile-style customisation (issue: custom models).
    system_prompt = models.TextField(blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    template = models.TextField(blank=True)
    max_tokens = models.PositiveIntegerField(null=True, blank=True, help_text=_("Ceiling for one answer"))

    is_default = models.BooleanField(default=False)
    access = models.CharField(max_length=20, choices=Access.choices, default=Access.EVERYONE)
    allowed_users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="allowed_models")
    status = models.CharField(max_length=20, choices=ModelStatus.choices, default=ModelStatus.READY)

    created_at = models.DateTimeField(auto_now_add=True)
    modified_at = models.DateTimeField(auto_now=True)

    objects = LLMModelQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "tag"], name="unique_model_name_tag")]
        ordering = ["name", "tag"]

    def __str__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.name}:{self.tag}"

    @property
    def label(self) -> str:
        return self.display_name or self.full_name
