"""llama.cpp inside the platform's own process, through xllamacpp.

Each loaded model is an ``xllamacpp.Server``: llama.cpp's continuous-batching server with an
OpenAI-compatible listener bound to loopback. Talking to it over loopback HTTP (instead of
the in-process call) gives streaming, and cancellation on disconnect, for free, and makes
this backend the same code path as vLLM.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from .base import Endpoint, EngineError, ModelSpec
from .openai_compat import OpenAICompatEngine

logger = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    spec: ModelSpec
    server: Any  # xllamacpp.Server
    url: str
    loaded_at: float
    last_used: float
    parallel: int
    context_per_slot: int


def _load_key(spec: ModelSpec) -> str:
    """Models that differ only in prompt or sampling (custom models) share one loaded server."""
    return f"{spec.path}|{spec.chat_template}|{spec.embedding}"


class EmbeddedEngine(OpenAICompatEngine):
    name = "embedded"

    def __init__(self) -> None:
        self._loaded: dict[str, LoadedModel] = {}
        # Loading happens in worker threads (it blocks for ~0.5 s), possibly from several
        # event loops in tests, so a thread lock rather than an asyncio one.
        self._lock = threading.Lock()

    async def endpoint_for(self, spec: ModelSpec) -> Endpoint:
        loaded = self._loaded.get(_load_key(spec))
        if loaded is None:
            loaded = await asyncio.to_thread(self.load, spec)
        loaded.last_used = time.monotonic()
        return Endpoint(url=loaded.url)

    def load(self, spec: ModelSpec) -> LoadedModel:
        key = _load_key(spec)
        with self._lock:
            current = self._loaded.get(key)
            if current is None:
                current = self._loaded[key] = self._start(spec)
            return current

    def _start(self, spec: ModelSpec) -> LoadedModel:
        import xllamacpp  # heavy native import: only in processes that serve models

        if not spec.path or not os.path.isfile(spec.path):
            raise EngineError(_("The file of model %(model)s is missing.") % {"model": spec.key}, permanent=True)
        parallel = settings.EMBEDDED_PARALLEL
        context = min(spec.context_length, settings.EMBEDDED_CONTEXT)
        params = xllamacpp.CommonParams()
        params.model.path = spec.path
        params.port = 0  # any free loopback port
        params.n_parallel = parallel
        params.n_ctx = context * parallel
        params.cont_batching = True
        params.endpoint_metrics = True
        params.endpoint_slots = True
        threads = settings.EMBEDDED_THREADS or (os.cpu_count() or 1)
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        if spec.chat_template:
            params.chat_template = spec.chat_template
            params.use_jinja = True
        if spec.embedding:
            params.embedding = True
            params.pooling_type = xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
        started = time.monotonic()
        try:
            server = xllamacpp.Server(params)
        except Exception as exc:  # llama.cpp reports a bad file as a generic runtime error
            logger.exception("could not load %s", spec.path)
            raise EngineError(
                _("Model %(model)s could not be loaded: %(error)s") % {"model": spec.key, "error": exc}, permanent=True
            ) from exc
        logger.info("loaded %s in %.2fs at %s", spec.key, time.monotonic() - started, server.listening_address)
        now = time.monotonic()
        return LoadedModel(
            spec=spec,
            server=server,
            url=server.listening_address,
            loaded_at=now,
            last_used=now,
            parallel=parallel,
            context_per_slot=context,
        )

    def unload(self, spec: ModelSpec) -> bool:
        with self._lock:
            loaded = self._loaded.pop(_load_key(spec), None)
        if loaded is None:
            return False
        # Dropping the last reference stops llama.cpp's loop and closes its listener;
        # requests in flight see their connection end.
        del loaded.server
        return True

    def loaded(self) -> list[LoadedModel]:
        return list(self._loaded.values())

    def loaded_url(self, spec: ModelSpec) -> str | None:
        loaded = self._loaded.get(_load_key(spec))
        return loaded.url if loaded else None

    async def count_tokens(self, spec: ModelSpec, text: str) -> int:
        from .openai_compat import http_client

        endpoint = await self.endpoint_for(spec)
        response = await http_client().post(endpoint.url + "/tokenize", json={"content": text})
        response.raise_for_status()
        return len(response.json()["tokens"])
