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
    # Restricted: the users in ``allowed_users``, the members of ``allowed_groups`` and of
    # ``allowed_projects``.
    RESTRICTED = "restricted", _("Selected users, groups and projects")


class LLMModelQuerySet(models.QuerySet["LLMModel"]):
    def ready(self) -> LLMModelQuerySet:
        return self.filter(status=ModelStatus.READY)

    def usable_by(self, user: object) -> LLMModelQuerySet:
        """Models this user may chat with: THE access rule, used by every interface.

        Staff: every ready model. Others: models open to everyone, and restricted ones that
        grant this user access through one of the audiences below (named users, the user's
        groups, projects the user is a member of). Each audience is a subquery of model ids,
        so adding one is one more line here and no duplicate rows (no ``distinct``).
        """
        if getattr(user, "is_staff", False):
            return self.ready()
        user_id = getattr(user, "pk", None)
        if user_id is None:
            return self.none()
        through_users = LLMModel.allowed_users.through.objects
        through_projects = LLMModel.allowed_projects.through.objects
        through_groups = LLMModel.allowed_groups.through.objects
        granted = (
            Q(pk__in=through_users.filter(user_id=user_id).values("llmmodel_id"))
            | Q(pk__in=through_groups.filter(group__user__id=user_id).values("llmmodel_id"))
            # By lookup, not import: models_admin sits below projects in the layers.
            | Q(pk__in=through_projects.filter(project__memberships__user_id=user_id).values("llmmodel_id"))
        )
        return self.ready().filter(Q(access=Access.EVERYONE) | granted)


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
    # Shape numbers for the memory estimate (GGUF header or config.json) and where it came from.
    details = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=1000, blank=True)

    # Modelfile-style customisation (issue: custom models).
    system_prompt = models.TextField(blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    template = models.TextField(blank=True)
    max_tokens = models.PositiveIntegerField(null=True, blank=True, help_text=_("Ceiling for one answer"))

    is_default = models.BooleanField(default=False)
    access = models.CharField(max_length=20, choices=Access.choices, default=Access.EVERYONE)
    allowed_users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="allowed_models")
    # Every member of these groups (Django's own ``auth.Group``).
    allowed_groups = models.ManyToManyField("auth.Group", blank=True, related_name="allowed_models")
    # Every member of these projects, whatever their role (string reference: no import upwards).
    allowed_projects = models.ManyToManyField("projects.Project", blank=True, related_name="allowed_models")
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


# --- Pulls, audit, vLLM endpoints (issue 4: model management) -----------------------------


class PullStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


ACTIVE_PULL_STATUSES = (PullStatus.QUEUED, PullStatus.RUNNING)


class PullKind(models.TextChoices):
    URL = "url", _("GGUF from a URL")
    HF_GGUF = "hf_gguf", _("GGUF from Hugging Face")
    HF_SAFETENSORS = "hf_safetensors", _("Safetensors from Hugging Face (vLLM)")
    LOCAL = "local", _("GGUF from the import folder")


class PullQuerySet(models.QuerySet["Pull"]):
    def active(self) -> PullQuerySet:
        return self.filter(status__in=ACTIVE_PULL_STATUSES)


class Pull(models.Model):
    """One download of a model, run by a Celery task; the row is the progress the pages show.

    ``lease_owner``/``lease_until`` say which task attempt works on it: a task claims the
    pull atomically and renews the lease with each progress write, so a redelivered or
    re-enqueued task never runs beside a live one, and a dead worker's pull is taken over
    once its lease runs out (see ``services.pulls_recover``).
    """

    source = models.CharField(max_length=1000)
    # Canonical form of ``source``: one active pull per key makes a second pull the same pull.
    source_key = models.CharField(max_length=1000)
    kind = models.CharField(max_length=20, choices=PullKind.choices)
    model_name = models.CharField(max_length=300)
    status = models.CharField(max_length=20, choices=PullStatus.choices, default=PullStatus.QUEUED)
    detail = models.CharField(max_length=300, blank=True)  # what it is doing now, for people
    digest = models.CharField(max_length=80, blank=True)
    total_bytes = models.BigIntegerField(null=True, blank=True)
    completed_bytes = models.BigIntegerField(default=0)
    speed_bps = models.FloatField(default=0.0)
    error = models.TextField(blank=True)
    model = models.ForeignKey(LLMModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="pulls")
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = PullQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["source_key"],
                condition=Q(status__in=["queued", "running"]),
                name="one_active_pull_per_source",
            )
        ]
        indexes = [models.Index(fields=["status", "updated_at"])]

    def __str__(self) -> str:
        return f"{self.source} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_PULL_STATUSES

    @property
    def eta_seconds(self) -> float | None:
        if not self.total_bytes or self.speed_bps <= 0 or self.status != PullStatus.RUNNING:
            return None
        return max(self.total_bytes - self.completed_bytes, 0) / self.speed_bps


class AdminAction(models.Model):
    """Who did what to which model, when: the raw material of the audit log."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Kept as text too, so the record survives the account.
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=50)
    target = models.CharField(max_length=1000, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["action", "created_at"])]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} {self.target}"


class VllmEndpoint(models.Model):
    """A vLLM (or any OpenAI-compatible) server; a Celery beat task keeps the health fields fresh."""

    url = models.URLField(max_length=500, unique=True)
    api_key = models.CharField(max_length=500, blank=True)
    enabled = models.BooleanField(default=True)
    healthy = models.BooleanField(default=False)
    # Requests the server reported running at the last check (its /metrics); routing
    # uses the web process's own live counts.
    in_flight = models.PositiveIntegerField(default=0)
    served_models = models.JSONField(default=list, blank=True)
    last_checked = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["url"]

    def __str__(self) -> str:
        return self.url
