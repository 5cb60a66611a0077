"""Fixtures for the probe tests: default models whose engine is, or is not, reachable."""

from __future__ import annotations

import pytest

from models_admin.models import Backend, LLMModel, VllmEndpoint
from tests.conftest import free_port


@pytest.fixture
def unreachable_default(transactional_db: None) -> LLMModel:
    """The default model is a vLLM model whose only server is a closed loopback port (an
    endpoint that passed its last check, so routing offers it, and then went away)."""
    VllmEndpoint.objects.create(url=f"http://127.0.0.1:{free_port()}", healthy=True, served_models=["nowhere"])
    return LLMModel.objects.create(
        name="nowhere", tag="latest", backend=Backend.VLLM, upstream_name="nowhere", format="safetensors",
        context_length=4096, capabilities=["completion"], is_default=True,
    )


@pytest.fixture
def missing_file_default(transactional_db: None) -> LLMModel:
    """The default model is an embedded one whose GGUF file has gone."""
    return LLMModel.objects.create(
        name="gone", tag="latest", backend=Backend.EMBEDDED, file_path="/nonexistent/gone.gguf",
        context_length=4096, capabilities=["completion"], is_default=True,
    )
