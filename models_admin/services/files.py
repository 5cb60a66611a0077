"""Model files under MODELS_DIR: the blob store, temporary downloads, unused files."""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

from django.conf import settings

from ..models import LLMModel, Pull, PullKind

logger = logging.getLogger(__name__)


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


def remove_unused_file(path_text: str) -> bool:
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
