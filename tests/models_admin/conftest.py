"""Fixtures for the model-management tests (the Django-free module tests do not use them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .helpers import ModelServer, start_model_server


@pytest.fixture
def models_dir(settings: Any, tmp_path: Path) -> Path:
    """A fresh model store and import folder for each test."""
    settings.MODELS_DIR = tmp_path / "models"
    settings.MODELS_DIR.mkdir()
    settings.MODEL_IMPORT_DIR = tmp_path / "import"
    settings.MODEL_IMPORT_DIR.mkdir()
    return settings.MODELS_DIR


@pytest.fixture
def model_server(settings: Any) -> Iterator[ModelServer]:
    """A loopback model server that pulls may reach (it is allow-listed by host:port)."""
    server = start_model_server()
    settings.PULL_ALLOW_HOSTS = [server.host]
    settings.HF_ENDPOINT = server.origin
    yield server
    server.stop()
