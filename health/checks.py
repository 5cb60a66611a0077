"""What ``/readyz`` checks: the database, the channel layer, the default model's engine.

Each check runs at most ``HEALTH_CHECK_TIMEOUT`` seconds, all three at once, so a probe gets
its answer within about that long even when a dependency hangs. A result is
``{"ok": bool, "ms": float, ...}`` with an ``"error"`` a person can read when ``ok`` is
false. Exception details (host names, user names) are logged, not put in the answer: the
endpoint is unauthenticated.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection

from inference.engines import EmbeddedEngine, EngineError, ModelSpec, engine_for
from inference.engines.openai_compat import http_client
from models_admin.selectors import default_model, model_spec

logger = logging.getLogger(__name__)

CheckResult = dict[str, Any]
Check = Callable[[], Awaitable[dict[str, Any]]]


class CheckFailed(Exception):
    """Not ready, for a reason the answer states; ``details`` go in the answer too."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


# Checks that ran out of time keep running (cancelled) in the background until they notice;
# a reference keeps them from being garbage-collected meanwhile.
_abandoned: set[asyncio.Task[Any]] = set()


def _forget_task(task: asyncio.Task[Any]) -> None:
    _abandoned.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.warning("a readiness check failed after its timeout", exc_info=task.exception())


async def run_check(check: Check, *, timeout: float) -> CheckResult:
    """``check()`` bounded by ``timeout`` seconds, as a result dict.

    ``asyncio.wait_for`` would wait for the cancelled check to finish its clean-up (a Redis
    unsubscribe, say), which can hang exactly when the dependency does; this answers on time
    and lets the cancelled check end in the background.
    """
    started = time.perf_counter()
    task = asyncio.ensure_future(check())
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:  # the probe went away
        task.cancel()
        raise
    ms = round((time.perf_counter() - started) * 1000, 1)
    if not done:
        task.cancel()
        _abandoned.add(task)
        task.add_done_callback(_forget_task)
        return {"ok": False, "ms": ms, "error": f"no answer within {timeout:g} s"}
    if task.cancelled():
        return {"ok": False, "ms": ms, "error": "the check was cancelled"}
    exc = task.exception()
    if exc is None:
        return {"ok": True, "ms": ms, **task.result()}
    if isinstance(exc, CheckFailed):
        return {"ok": False, "ms": ms, **exc.details, "error": exc.message}
    logger.warning("readiness check %s failed", getattr(check, "__name__", check), exc_info=exc)
    return {"ok": False, "ms": ms, "error": f"{type(exc).__name__} (details in the server log)"}


# --- The database -----------------------------------------------------------------------------


def _select_one() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        row = cursor.fetchone()
    if row is None or row[0] != 1:
        raise CheckFailed(f"SELECT 1 answered {row!r}")


async def database_check() -> dict[str, Any]:
    # database_sync_to_async hands the connection back (to the pool) afterwards.
    await database_sync_to_async(_select_one)()
    return {}


# --- The channel layer ------------------------------------------------------------------------


async def _drop_channel(layer: Any, name: str) -> None:
    """Leave ``name`` the way a consumer does: a ``receive`` that is cancelled.

    Channels has no "delete channel" call. Without this the Redis pub/sub layer would stay
    subscribed to one more channel per probe, for good (the in-memory layer already dropped
    the emptied queue; this creates and drops it once more).
    """
    waiter = asyncio.ensure_future(layer.receive(name))
    await asyncio.sleep(0)  # let it reach its wait: only a cancelled *wait* cleans up
    waiter.cancel()
    await asyncio.wait({waiter})
    if not waiter.cancelled() and waiter.exception() is not None:
        logger.warning("leaving health-check channel %s failed", name, exc_info=waiter.exception())


async def channel_layer_check(layer: Any = None) -> dict[str, Any]:
    """A message sent to a fresh channel and received back, through the same layer that
    carries the chat's deltas (in-memory, or Redis in production)."""
    layer = layer if layer is not None else get_channel_layer()
    if layer is None:
        raise CheckFailed("no channel layer is configured (CHANNEL_LAYERS)")
    backend = type(layer).__name__
    name = await layer.new_channel()
    nonce = uuid.uuid4().hex
    await layer.send(name, {"type": "health.ping", "nonce": nonce})
    message = await layer.receive(name)
    await _drop_channel(layer, name)
    if message.get("nonce") != nonce:
        raise CheckFailed("the channel layer delivered another message than the one sent", backend=backend)
    return {"backend": backend}


# --- The default model's engine ---------------------------------------------------------------


def _default_spec() -> ModelSpec | None:
    model = default_model()
    return None if model is None else model_spec(model)


def _gguf_file_ready(spec: ModelSpec) -> None:
    if not spec.path:
        raise CheckFailed("the default model has no GGUF file", backend=spec.backend, loaded=False)
    try:
        with open(spec.path, "rb") as file:
            magic = file.read(4)
    except FileNotFoundError:
        raise CheckFailed("the default model's GGUF file is missing", backend=spec.backend, loaded=False) from None
    except OSError as exc:
        raise CheckFailed(
            f"the default model's GGUF file cannot be read ({exc.strerror})", backend=spec.backend, loaded=False
        ) from None
    if magic != b"GGUF":
        raise CheckFailed("the default model's file is not a GGUF file", backend=spec.backend, loaded=False)


async def _embedded_ready(engine: EmbeddedEngine, spec: ModelSpec) -> dict[str, Any]:
    """The embedded engine is ready for the model when it is loaded and its llama.cpp
    listener answers, or, if it is not loaded, when it can be loaded: its GGUF file is there.

    ``EmbeddedEngine.health()`` is not used: it goes through ``_using()``, which *loads* a
    model that is not loaded (seconds of CPU and the model's size in RAM, on every probe),
    and counts as a use, so with a probe every few seconds the keep-alive would never run
    out and the model would never be unloaded. The listener's own ``/health`` is asked
    directly instead, which leaves the in-flight count and the keep-alive alone.
    """
    loaded = engine.loaded_model(spec)
    if loaded is not None:
        try:
            response = await http_client().get(loaded.url.rstrip("/") + "/health", timeout=settings.HEALTH_CHECK_TIMEOUT)
            answered = response.status_code == 200
        except httpx.HTTPError:
            answered = False
        if answered:
            return {"backend": spec.backend, "loaded": True}
        if engine.loaded_model(spec) is loaded:
            raise CheckFailed("the default model is loaded but its llama.cpp server does not answer",
                              backend=spec.backend, loaded=True)
        # Unloaded (idle) while we asked: then it is as ready as any model that is not loaded.
    await asyncio.to_thread(_gguf_file_ready, spec)
    return {"backend": spec.backend, "loaded": False}


async def engine_check() -> dict[str, Any]:
    """The engine of the default model (the one new chats get) can serve it.

    No model at all is not a failure: a fresh installation must be reachable so that an
    admin can pull one, and the API answers "model not found" meanwhile.
    """
    spec = await database_sync_to_async(_default_spec)()
    if spec is None:
        return {"backend": None, "detail": "no model is registered yet"}
    try:
        engine = engine_for(spec)
    except EngineError as exc:
        raise CheckFailed(exc.message, backend=spec.backend) from None
    if isinstance(engine, EmbeddedEngine):
        return await _embedded_ready(engine, spec)
    if not spec.endpoints:
        raise CheckFailed(
            "no server is configured, or none passed its last check, for the default model "
            "(register a vLLM endpoint or set VLLM_URL)",
            backend=spec.backend,
        )
    if not await engine.health(spec):
        raise CheckFailed(
            f"the {spec.backend} server for the default model does not answer "
            f"({len(spec.endpoints)} server(s) configured)",
            backend=spec.backend,
        )
    return {"backend": spec.backend}


CHECKS: dict[str, Check] = {
    "database": database_check,
    "channel_layer": channel_layer_check,
    "engine": engine_check,
}


async def readiness() -> dict[str, CheckResult]:
    """Every check, at the same time, each bounded by ``HEALTH_CHECK_TIMEOUT``."""
    timeout = float(settings.HEALTH_CHECK_TIMEOUT)
    results = await asyncio.gather(*(run_check(check, timeout=timeout) for check in CHECKS.values()))
    return dict(zip(CHECKS, results, strict=True))
