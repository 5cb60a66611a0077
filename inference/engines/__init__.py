"""Engine registry: one instance of each backend per process."""

from __future__ import annotations

from functools import cache

from .base import Engine, EngineError, ModelSpec
from .embedded import EmbeddedEngine, LoadedModel, parse_keep_alive
from .openai_compat import OpenAICompatEngine

__all__ = [
    "EmbeddedEngine",
    "Engine",
    "EngineError",
    "LoadedModel",
    "ModelSpec",
    "OpenAICompatEngine",
    "embedded_engine",
    "engine_for",
    "parse_keep_alive",
    "vllm_engine",
]


@cache
def embedded_engine() -> EmbeddedEngine:
    return EmbeddedEngine()


@cache
def vllm_engine() -> OpenAICompatEngine:
    return OpenAICompatEngine()


def engine_for(spec: ModelSpec) -> Engine:
    if spec.backend == "embedded":
        return embedded_engine()
    if spec.backend == "vllm":
        return vllm_engine()
    raise EngineError(f"unknown engine backend {spec.backend!r}", permanent=True)
