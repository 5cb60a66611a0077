"""Reads of the model registry, with the access rule applied."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.utils.translation import gettext as _

from inference import parameters
from inference.engines.base import Endpoint, ModelSpec

from inference.fit import ModelShape
from inference.gguf_info import InvalidGGUF, read_gguf_info
from .models import Backend, LLMModel, Pull, PullStatus, VllmEndpoint
from .names import InvalidModelName, parse_model_name
from .sources import FitReport, fit_report, shape_from_details

UserLike = AbstractBaseUser | AnonymousUser


class ModelNotFound(Exception):
    """Raised alike for a missing model and a forbidden one, so names don't leak."""

    def __init__(self, name: str) -> None:
        super().__init__(_("model '%(name)s' not found") % {"name": name})
        self.name = name


def model_list_for_user(*, user: UserLike) -> list[LLMModel]:
    return list(LLMModel.objects.usable_by(user).order_by("name", "tag"))


def get_model_for_user(*, user: UserLike, name: str) -> LLMModel:
    """The model called ``name`` (``x`` == ``x:latest``) if this user may use it."""
    try:
        parsed = parse_model_name(name)
    except InvalidModelName as exc:
        raise ModelNotFound(name) from exc
    model = LLMModel.objects.usable_by(user).filter(name=parsed.name, tag=parsed.tag).first()
    if model is None:
        raise ModelNotFound(name)
    return model


def default_model_for_user(*, user: UserLike) -> LLMModel | None:
    usable = LLMModel.objects.usable_by(user)
    return usable.filter(is_default=True).first() or usable.order_by("name", "tag").first()


def default_model() -> LLMModel | None:
    """The model new chats get when nobody picked one, for no user in particular (readiness
    checks): the ready model marked default, else the first ready one by name, as
    ``default_model_for_user`` picks for staff."""
    ready = LLMModel.objects.ready()
    return ready.filter(is_default=True).first() or ready.order_by("name", "tag").first()


def chat_context(model: LLMModel) -> int:
    """The context one chat with this model really gets, in tokens.

    An administrator's ``num_ctx`` for the model wins (up to what the model was trained
    for); otherwise vLLM serves the model's own length, and the embedded engine gives each
    of its parallel slots at most ``EMBEDDED_CONTEXT``.
    """
    chosen = (model.parameters or {}).get("num_ctx")
    if chosen:
        return max(16, min(int(chosen), model.context_length or int(chosen)))
    if model.backend == Backend.VLLM:
        return model.context_length
    return min(model.context_length, settings.EMBEDDED_CONTEXT)


def model_spec(model: LLMModel) -> ModelSpec:
    defaults = parameters.model_defaults(model.parameters or {})
    defaults.pop("max_tokens", None)  # applied as a ceiling by the options builder
    context = chat_context(model)
    if model.backend == Backend.VLLM:
        return ModelSpec(
            key=model.full_name,
            backend=model.backend,
            upstream=model.upstream_name or model.name,
            context_length=context,
            endpoints=vllm_endpoints_for(model),
            embedding="embedding" in (model.capabilities or []),
            defaults=tuple(sorted(defaults.items())),
        )
    return ModelSpec(
        key=model.full_name,
        backend=model.backend,
        upstream=model.full_name,
        context_length=context,
        path=model.file_path,
        embedding="embedding" in (model.capabilities or []) and "completion" not in (model.capabilities or []),
        chat_template=model.template,
        defaults=tuple(sorted(defaults.items())),
    )


def vllm_endpoints_for(model: LLMModel) -> tuple[Endpoint, ...]:
    """The servers a vLLM model can be sent to: registered endpoints that were healthy and
    served it at their last check, and VLLM_URL (the default endpoint) if configured.

    The engine then picks among them per request and skips ones that fail meanwhile.
    """
    upstream = model.upstream_name or model.name
    endpoints = [
        Endpoint(url=e.url, api_key=e.api_key)
        for e in VllmEndpoint.objects.filter(enabled=True, healthy=True).only("url", "api_key", "served_models")
        if upstream in (e.served_models or [])
    ]
    default = settings.VLLM_URL.rstrip("/")
    if default and all(e.url.rstrip("/") != default for e in endpoints):
        endpoints.append(Endpoint(url=default, api_key=settings.VLLM_API_KEY))
    return tuple(endpoints)


# --- The admin page ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportFile:
    name: str  # relative to MODEL_IMPORT_DIR
    size: int


@dataclass
class ModelRow:
    model: LLMModel
    fit: FitReport | None
    loaded: bool = False
    expires_at: datetime | None = None
    endpoints: list[str] = field(default_factory=list)
    allowed_users: list[str] = field(default_factory=list)
    allowed_groups: list[str] = field(default_factory=list)
    allowed_projects: list[str] = field(default_factory=list)
    chat_context: int = 0


@dataclass
class EndpointRow:
    endpoint: VllmEndpoint
    live_in_flight: int
    taken_out: bool


@lru_cache(maxsize=256)
def _gguf_shape(path: str, mtime: float) -> ModelShape | None:
    try:
        return ModelShape.from_gguf(read_gguf_info(Path(path)))
    except (OSError, InvalidGGUF):
        return None


def model_fit(model: LLMModel, *, context_length: int | None = None, parallel: int | None = None) -> FitReport | None:
    """Does ``model`` fit in the memory of the engine that runs it? None when its shape is unknown."""
    shape = shape_from_details(model.details or {}, weights_bytes=model.size_bytes, context_length=model.context_length)
    if shape is None and model.format == "gguf" and model.file_path:
        try:
            shape = _gguf_shape(model.file_path, os.path.getmtime(model.file_path))
        except OSError:
            shape = None
    if shape is None:
        return None
    num_ctx = (model.parameters or {}).get("num_ctx")
    return fit_report(
        shape,
        backend=model.backend,
        context_length=context_length or (int(num_ctx) if num_ctx else None),
        parallel=parallel,
    )


def models_overview() -> list[ModelRow]:
    """Every model with what the admin table shows: fit, loaded state, endpoints, audience."""
    from inference.engines import embedded_engine, vllm_engine

    rows = []
    engine = embedded_engine()
    endpoints = list(VllmEndpoint.objects.filter(enabled=True))
    for model in LLMModel.objects.prefetch_related("allowed_users", "allowed_groups", "allowed_projects").order_by("name", "tag"):
        row = ModelRow(
            model=model,
            fit=model_fit(model),
            allowed_users=[u.get_username() for u in model.allowed_users.all()],
            allowed_groups=[g.name for g in model.allowed_groups.all()],
            allowed_projects=[str(p) for p in model.allowed_projects.all()],
            chat_context=chat_context(model),
        )
        if model.backend == Backend.EMBEDDED:
            loaded = engine.loaded_model(model_spec(model))
            row.loaded = loaded is not None
            row.expires_at = loaded.expires_at if loaded else None
        else:
            upstream = model.upstream_name or model.name
            row.endpoints = [e.url for e in endpoints if e.healthy and upstream in (e.served_models or [])]
            if settings.VLLM_URL and settings.VLLM_URL.rstrip("/") not in row.endpoints:
                row.endpoints.append(settings.VLLM_URL.rstrip("/"))
            row.loaded = bool(row.endpoints) and any(not vllm_engine().is_down(url) for url in row.endpoints)
        rows.append(row)
    return rows


def endpoints_overview() -> list[EndpointRow]:
    from inference.engines import vllm_engine

    engine = vllm_engine()
    return [
        EndpointRow(endpoint=e, live_in_flight=engine.in_flight(e.url), taken_out=engine.is_down(e.url))
        for e in VllmEndpoint.objects.all()
    ]


def pulls_for_page(*, recent: int = 10) -> list[Pull]:
    """Running and queued pulls, then the latest finished ones."""
    active = list(Pull.objects.active().order_by("created_at"))
    finished = list(Pull.objects.exclude(status__in=[PullStatus.QUEUED, PullStatus.RUNNING]).order_by("-updated_at")[:recent])
    return active + finished


def get_pull(*, pull_id: int) -> Pull | None:
    return Pull.objects.filter(pk=pull_id).first()


def import_dir_files(*, limit: int = 500) -> list[ImportFile]:
    """GGUF files in the import folder (and its subfolders), for the import list."""
    base = Path(settings.MODEL_IMPORT_DIR)
    if not base.is_dir():
        return []
    found: list[ImportFile] = []
    for path in sorted(base.rglob("*")):
        if len(found) >= limit:
            break
        if path.is_file() and path.suffix.lower() == ".gguf" and path.resolve().is_relative_to(base.resolve()):
            found.append(ImportFile(name=str(path.relative_to(base)), size=path.stat().st_size))
    return found
