"""Reads of the model registry, with the access rule applied."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.utils.translation import gettext as _

from inference.engines.base import Endpoint, ModelSpec

from .models import Backend, LLMModel
from .names import InvalidModelName, parse_model_name

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


# Ollama's option names, mapped to the OpenAI-style names the engines take.
_OLLAMA_OPTION_NAMES = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "repeat_penalty": "repeat_penalty",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "seed": "seed",
    "stop": "stop",
    "num_predict": "max_tokens",
}


def sampling_defaults(parameters: dict[str, Any]) -> dict[str, Any]:
    """A model's Modelfile parameters as engine options (unknown ones are ignored)."""
    return {_OLLAMA_OPTION_NAMES[key]: value for key, value in parameters.items() if key in _OLLAMA_OPTION_NAMES}


def model_spec(model: LLMModel) -> ModelSpec:
    defaults = sampling_defaults(model.parameters or {})
    defaults.pop("max_tokens", None)  # applied as a ceiling by the options builder
    context = int((model.parameters or {}).get("num_ctx") or model.context_length)
    if model.backend == Backend.VLLM:
        endpoints: tuple[Endpoint, ...] = ()
        if settings.VLLM_URL:
            endpoints = (Endpoint(url=settings.VLLM_URL, api_key=settings.VLLM_API_KEY),)
        return ModelSpec(
            key=model.full_name,
            backend=model.backend,
            upstream=model.upstream_name or model.name,
            context_length=context,
            endpoints=endpoints,
            embedding="embedding" in (model.capabilities or []),
            defaults=tuple(sorted(defaults.items())),
        )
    return ModelSpec(
        key=model.full_name,
        backend=model.backend,
        upstream=model.full_name,
        context_length=min(context, settings.EMBEDDED_CONTEXT),
        path=model.file_path,
        embedding="embedding" in (model.capabilities or []) and "completion" not in (model.capabilities or []),
        chat_template=model.template,
        defaults=tuple(sorted(defaults.items())),
    )
