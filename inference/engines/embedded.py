"""llama.cpp inside the platform's own process, through xllamacpp.

Each loaded model is an ``xllamacpp.Server``: llama.cpp's continuous-batching server with an
OpenAI-compatible listener bound to loopback. Talking to it over loopback HTTP (instead of
the in-process call) gives streaming, and cancellation on disconnect, for free, and makes
this backend the same code path as vLLM.

Models load on first use and unload when idle, as Ollama does: each loaded model has a
``keep_alive`` (``EMBEDDED_KEEP_ALIVE``, or what the last request asked for through
``touch``) and a reaper thread unloads it that long after its last request ended. Loading a
model that would exceed ``EMBEDDED_MAX_LOADED`` models or ``ENGINE_MEMORY_BYTES`` first
unloads the least recently used idle ones. A model with requests in flight is never unloaded
by either, only by an explicit ``unload``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings
from django.utils.translation import gettext as _

from ..signals import model_loading
from .base import Endpoint, EngineError, ModelSpec
from .openai_compat import OpenAICompatEngine

logger = logging.getLogger(__name__)

REAP_INTERVAL = 1.0  # seconds between the reaper's looks at idle models


@dataclass
class LoadedModel:
    spec: ModelSpec
    server: Any  # xllamacpp.Server
    url: str
    loaded_at: float
    last_used: float
    parallel: int
    context_per_slot: int
    size_bytes: int = 0  # estimated memory: weights, KV cache for every slot, compute buffers
    keep_alive: float = 300.0  # seconds idle before unloading; negative: never
    in_flight: int = 0
    # time.monotonic() after which an idle model is unloaded; None while busy or kept forever.
    idle_deadline: float | None = None

    @property
    def expires_at(self) -> datetime | None:
        """When this model will be unloaded if no request comes (what /api/ps shows).

        While requests run it is the keep-alive counted from now; None means never.
        """
        if self.keep_alive < 0:
            return None
        remaining = self.keep_alive if self.idle_deadline is None else self.idle_deadline - time.monotonic()
        return datetime.now(UTC) + timedelta(seconds=max(remaining, 0.0))


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_keep_alive(value: object) -> float | None:
    """Ollama's ``keep_alive`` as seconds for ``touch``: a number of seconds, or a Go duration
    such as ``"5m"``, ``"1h30m"``, ``"-1"`` (negative: keep loaded). None/"" means the default.

    Raises ValueError for anything else (the API answers 400).
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("keep_alive must be a number of seconds or a duration like 5m")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise ValueError("keep_alive must be a number of seconds or a duration like 5m")
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    parts = _DURATION_PART.findall(body)
    if not parts or "".join(number + unit for number, unit in parts) != body:
        raise ValueError(f"keep_alive {value!r} is not a duration like 5m, 1h or 300")
    return sign * sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def _load_key(spec: ModelSpec) -> str:
    """Models that differ only in prompt or sampling (custom models) share one loaded server;
    a different template or context length (num_ctx) needs its own, as in Ollama."""
    context = spec.context_length  # the registry's choice per model (models_admin.selectors.chat_context)
    return f"{spec.path}|{spec.chat_template}|{spec.embedding}|{context}"


def _memory_estimate(spec: ModelSpec, *, context: int, parallel: int) -> int:
    """Bytes this model will take loaded: from its GGUF header, else its file size."""
    from inference.fit import ModelShape
    from inference.gguf_info import InvalidGGUF, read_gguf_info

    try:
        shape = ModelShape.from_gguf(read_gguf_info(Path(spec.path)))
    except (OSError, InvalidGGUF):
        try:
            return os.path.getsize(spec.path)
        except OSError:
            return 0
    return shape.estimate(context_length=context, parallel=parallel).total


# Servers whose task loop never answered: destroying one would wait for that loop forever
# (holding the GIL), so they are kept rather than freed.
_UNSTOPPABLE: list[Any] = []

SERVING_WAIT_SECONDS = 30.0


def wait_until_serving(server: Any) -> None:
    """Return once ``server``'s task loop has answered a request; every ``xllamacpp.Server``
    (tests and benchmarks too) waits here before it may be destroyed.

    xllamacpp's constructor returns just before the loop starts, and the loop's start clears
    a stop asked for before it: a server destroyed in that moment (an Ollama load with
    ``keep_alive: 0``, an unload right after a load) never stops, and its destructor, which
    holds the GIL, waits for it forever, and the whole process froze (CI hung; measured: 3 of
    3 runs of 40 load-and-destroy cycles, each within its first 5 cycles; with this wait, 3 of
    3 runs finished). ``/slots`` is answered by the loop itself: an answer proves it runs.
    """
    deadline = time.monotonic() + SERVING_WAIT_SECONDS
    while True:
        try:
            if httpx.get(server.listening_address + "/slots", timeout=5.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            _UNSTOPPABLE.append(server)
            raise EngineError(_("The model was loaded but its engine did not start. Please try again."), status=503)
        time.sleep(0.05)


class EmbeddedEngine(OpenAICompatEngine):
    name = "embedded"

    def __init__(self) -> None:
        super().__init__()
        self._loaded: dict[str, LoadedModel] = {}
        # Keep-alive asked for per model (by load key), applied whenever it is (re)loaded.
        self._keep_alive: dict[str, float] = {}
        # Loading happens in worker threads (it blocks for a second or more), possibly from
        # several event loops in tests, so thread locks rather than asyncio ones. ``_loading``
        # serialises loads and evictions; ``_state`` guards the in-flight counts and the dict
        # for the short moments they change, so the event loop never waits for a load.
        self._loading = threading.Lock()
        self._state = threading.Lock()
        self._reaper: threading.Thread | None = None

    # --- keep-alive: the API for Ollama's ``keep_alive`` -----------------------------------

    def touch(self, spec: ModelSpec, *, keep_alive: float | None = None) -> None:
        """Set how long ``spec`` stays loaded after its last request ends.

        ``None``: the default (``EMBEDDED_KEEP_ALIVE``); negative: until unloaded; ``0``:
        unload as soon as no request uses it. Applies to the loaded model now and to later
        loads; call it with each request (Ollama's per-request ``keep_alive``).
        """
        key = _load_key(spec)
        seconds = settings.EMBEDDED_KEEP_ALIVE if keep_alive is None else float(keep_alive)
        with self._state:
            if keep_alive is None:
                self._keep_alive.pop(key, None)
            else:
                self._keep_alive[key] = seconds
            loaded = self._loaded.get(key)
            if loaded is not None:
                loaded.keep_alive = seconds
                if loaded.in_flight == 0:
                    loaded.idle_deadline = self._deadline(seconds)
        if seconds == 0:
            self.reap()

    async def endpoint_for(self, spec: ModelSpec, *, keep_alive: float | None = None) -> Endpoint:
        """The loopback URL of the loaded model (loading it first); ``keep_alive`` as in ``touch``."""
        if keep_alive is not None:
            self.touch(spec, keep_alive=keep_alive)
        loaded = self._loaded.get(_load_key(spec))
        if loaded is None:
            loaded = await asyncio.to_thread(self.load, spec)
        loaded.last_used = time.monotonic()
        return Endpoint(url=loaded.url)

    async def load_async(self, spec: ModelSpec, *, keep_alive: float | None = None) -> LoadedModel:
        """Load ``spec`` without a request (Ollama: a generate call with an empty prompt)."""
        if keep_alive is not None:
            self.touch(spec, keep_alive=keep_alive)
        return await asyncio.to_thread(self.load, spec)

    # --- requests: counted in flight so nothing unloads under them -------------------------

    async def _acquire(self, spec: ModelSpec) -> Endpoint:
        loaded = self._checkout(spec)
        if loaded is None:
            loaded = await asyncio.to_thread(self._ensure_loaded, spec, True)
        return Endpoint(url=loaded.url)

    def _checkout(self, spec: ModelSpec) -> LoadedModel | None:
        with self._state:
            loaded = self._loaded.get(_load_key(spec))
            if loaded is not None:
                loaded.in_flight += 1
                loaded.last_used = time.monotonic()
                loaded.idle_deadline = None
            return loaded

    def _release(self, spec: ModelSpec, endpoint: Endpoint) -> None:
        with self._state:
            loaded = self._loaded.get(_load_key(spec))
            # A model unloaded (and maybe reloaded elsewhere) meanwhile is not this request's.
            if loaded is None or loaded.url != endpoint.url:
                return
            loaded.in_flight = max(loaded.in_flight - 1, 0)
            loaded.last_used = time.monotonic()
            if loaded.in_flight == 0:
                loaded.idle_deadline = self._deadline(loaded.keep_alive)
        if loaded.in_flight == 0 and loaded.keep_alive == 0:
            self.reap()

    def mark_down(self, endpoint: Endpoint) -> None:
        # One loopback server per model: there is no other replica to route to.
        pass

    # --- loading and unloading -------------------------------------------------------------

    def load(self, spec: ModelSpec) -> LoadedModel:
        return self._ensure_loaded(spec, False)

    def _ensure_loaded(self, spec: ModelSpec, checkout: bool) -> LoadedModel:
        key = _load_key(spec)
        with self._loading:
            with self._state:
                current = self._loaded.get(key)
                if current is not None:
                    if checkout:
                        current.in_flight += 1
                        current.idle_deadline = None
                    current.last_used = time.monotonic()
                    return current
            parallel = settings.EMBEDDED_PARALLEL
            context = spec.context_length  # the registry's choice per model (models_admin.selectors.chat_context)
            needed = _memory_estimate(spec, context=context, parallel=parallel)
            self._make_room(spec, needed)
            current = self._start(spec, parallel=parallel, context=context)
            current.size_bytes = needed
            current.keep_alive = self._keep_alive.get(key, settings.EMBEDDED_KEEP_ALIVE)
            with self._state:
                if checkout:
                    current.in_flight = 1
                else:
                    current.idle_deadline = self._deadline(current.keep_alive)
                self._loaded[key] = current
        self._start_reaper()
        return current

    def _make_room(self, spec: ModelSpec, needed: int) -> None:
        """Unload least recently used idle models until ``needed`` more bytes and one more model fit."""
        while True:
            with self._state:
                loaded = list(self._loaded.values())
                if not loaded:
                    return  # alone it may still not fit; the admin page warned, llama.cpp may cope (mmap)
                used = sum(m.size_bytes for m in loaded)
                too_many = len(loaded) >= settings.EMBEDDED_MAX_LOADED
                too_big = used + needed > settings.ENGINE_MEMORY_BYTES
                if not (too_many or too_big):
                    return
                idle = [m for m in loaded if m.in_flight == 0]
                if not idle:
                    raise EngineError(
                        _("The server is busy with other models. Please try again in a moment."), status=503
                    )
                victim = min(idle, key=lambda m: m.last_used)
                del self._loaded[_load_key(victim.spec)]
            logger.info(
                "unloading %s to make room for %s (%s)", victim.spec.key, spec.key, "count" if too_many else "memory"
            )
            self._stop(victim)

    def _start(self, spec: ModelSpec, *, parallel: int, context: int) -> LoadedModel:
        if not spec.path or not os.path.isfile(spec.path):
            raise EngineError(_("The file of model %(model)s is missing.") % {"model": spec.key}, permanent=True)
        # xllamacpp is imported, and builds its server (the model load included), without
        # releasing the GIL: this whole process stands still until both are done (0.6 s for
        # SmolLM2 from a warm disk, 6.5 s from a cold one with a second process loading beside
        # it, measured). Receivers act before.
        for receiver, result in model_loading.send_robust(sender=type(self), spec=spec):
            if isinstance(result, Exception):
                logger.error("before loading %s: %r failed", spec.key, receiver, exc_info=result)
        import xllamacpp  # heavy native import: only in processes that serve models

        params = xllamacpp.CommonParams()
        params.model.path = spec.path
        params.port = 0  # any free loopback port
        params.n_parallel = parallel
        params.n_ctx = context * parallel
        params.cont_batching = True
        # Prompts are evaluated in steps of at most this many tokens, and every running
        # answer gets its next token between two steps: on a CPU, one long prompt must not
        # hold up everyone else's stream for seconds (llama.cpp's default step is 2,048).
        params.n_batch = settings.EMBEDDED_BATCH
        params.n_ubatch = min(params.n_ubatch, settings.EMBEDDED_BATCH)
        # Requests beyond the parallel slots wait in llama.cpp's queue, each holding an HTTP
        # thread meanwhile: leave enough threads for a burst of queued requests.
        params.n_threads_http = max(64, parallel * 8)
        # llama.cpp logs every token batch at its default verbosity; keep warnings and errors.
        params.verbosity = 3 if settings.ENGINE_DEBUG_LOG else 0
        # llama.cpp keeps finished prompts' states in host memory to reuse them, up to 8 GiB
        # per loaded model by default: a long soak grew the web process by ~2 MiB/s with no
        # end in sight. Bound it (0 switches the cache off).
        params.cache_ram_mib = settings.EMBEDDED_CACHE_RAM_MIB
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
        wait_until_serving(server)
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

    @staticmethod
    def _stop(loaded: LoadedModel) -> None:
        # Dropping the last reference stops llama.cpp's loop and closes its listener;
        # requests in flight see their connection end.
        del loaded.server

    @staticmethod
    def _deadline(keep_alive: float) -> float | None:
        return None if keep_alive < 0 else time.monotonic() + keep_alive

    def unload(self, spec: ModelSpec) -> bool:
        """Unload now, even under running requests (they fail); False if it was not loaded.

        For Ollama's graceful ``keep_alive: 0`` (unload once idle) use ``touch``.
        """
        with self._state:
            loaded = self._loaded.pop(_load_key(spec), None)
        if loaded is None:
            return False
        self._stop(loaded)
        return True

    def reap(self) -> list[str]:
        """Unload every idle model whose keep-alive has run out; returns their keys."""
        now = time.monotonic()
        with self._state:
            expired = [
                m
                for m in self._loaded.values()
                if m.in_flight == 0 and m.idle_deadline is not None and m.idle_deadline <= now
            ]
            for model in expired:
                del self._loaded[_load_key(model.spec)]
        for model in expired:
            logger.info("unloading %s: idle for its keep-alive of %ss", model.spec.key, model.keep_alive)
            self._stop(model)
        return [m.spec.key for m in expired]

    def _start_reaper(self) -> None:
        with self._state:
            if self._reaper is not None and self._reaper.is_alive():
                return
            self._reaper = threading.Thread(target=self._reap_forever, name="embedded-reaper", daemon=True)
            self._reaper.start()

    def _reap_forever(self) -> None:
        while True:
            time.sleep(REAP_INTERVAL)
            try:
                self.reap()
            except Exception:  # the reaper must outlive any one bad unload
                logger.exception("unloading idle models failed")

    # --- what /api/ps and the admin page show ----------------------------------------------

    def loaded(self) -> list[LoadedModel]:
        with self._state:
            return list(self._loaded.values())

    def loaded_url(self, spec: ModelSpec) -> str | None:
        loaded = self._loaded.get(_load_key(spec))
        return loaded.url if loaded else None

    def loaded_model(self, spec: ModelSpec) -> LoadedModel | None:
        return self._loaded.get(_load_key(spec))

    async def count_tokens(self, spec: ModelSpec, text: str) -> int:
        from .openai_compat import http_client

        async with self._using(spec) as endpoint:
            response = await http_client().post(endpoint.url + "/tokenize", json={"content": text})
        response.raise_for_status()
        return len(response.json()["tokens"])
