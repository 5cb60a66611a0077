"""Model management over the Ollama API, for administrators' keys: pull, delete, copy, create.

The work is done by ``models_admin.services`` (the same functions as the admin pages). Until
those functions exist the routes answer 501 with a clear message, never 500.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from channels.db import database_sync_to_async
from django.db import models
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase

from models_admin.services import errors as model_errors
from models_admin.services import pulls as model_pulls
from models_admin.services import registry as model_registry
from models_admin.selectors import ModelNotFound

from .endpoint import ApiRequest, Caller, api_endpoint, parse_body
from .errors import ApiError, Protocol, model_not_found
from .schemas import OllamaCopyRequest, OllamaCreateRequest, OllamaDeleteRequest, OllamaPullRequest
from .streaming import NDJSON, ndjson_line, stream_response

T = TypeVar("T")

# How often a pull's progress is read back from the database while streaming it.
PULL_POLL_SECONDS = 0.25

endpoint = functools.partial(api_endpoint, Protocol.OLLAMA, admin=True)


def _service(name: str) -> Callable[..., Any]:
    function = getattr(model_pulls, name, None) or getattr(model_registry, name, None)
    if function is None:
        raise ApiError(501, "model management through the API is not available on this server yet", code="not_implemented")
    return function


def _managed(name: str, work: Callable[[], T]) -> T:
    """Run a management service; its refusals become 404 or 400."""
    model_error: Any = getattr(model_errors, "ModelError", None)
    try:
        return work()
    except ModelNotFound as exc:
        raise model_not_found(name) from exc
    except Exception as exc:
        if model_error is not None and isinstance(exc, model_error):
            raise ApiError(400, str(getattr(exc, "message", exc)), code="invalid_request") from exc
        raise


# ---- Pull -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PullState:
    status: str
    digest: str
    total: int
    completed: int
    error: str

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed", "cancelled")


def _pull_state(pull_model: type[models.Model], pull_id: int) -> PullState:
    row = pull_model.objects.filter(pk=pull_id).values("status", "digest", "total_bytes", "completed_bytes", "error").first()  # type: ignore[attr-defined]
    if row is None:
        return PullState(status="failed", digest="", total=0, completed=0, error="the pull was removed")
    return PullState(
        status=str(row["status"]),
        digest=row["digest"] or "",
        total=int(row["total_bytes"] or 0),
        completed=int(row["completed_bytes"] or 0),
        error=row["error"] or "",
    )


async def _pull_states(pull: models.Model) -> AsyncIterator[PullState]:
    """The pull's state every PULL_POLL_SECONDS until it ends; no connection is held between reads."""
    read = database_sync_to_async(_pull_state)
    while True:
        state = await read(type(pull), pull.pk)
        yield state
        if state.finished:
            return
        await asyncio.sleep(PULL_POLL_SECONDS)


def _progress(state: PullState, name: str) -> dict[str, Any]:
    digest = state.digest if state.digest.startswith("sha256:") else ""
    label = digest.removeprefix("sha256:")[:12] if digest else name
    return {"status": f"pulling {label}", "digest": digest, "total": state.total, "completed": state.completed}


def _failure(state: PullState) -> ApiError:
    if state.status == "cancelled":
        return ApiError(409, "the pull was cancelled", code="pull_cancelled")
    return ApiError(502, state.error or "the pull failed", code="pull_failed")


async def _pull_lines(pull: models.Model, name: str) -> AsyncIterator[bytes]:
    yield ndjson_line({"status": "pulling manifest"})
    shown: tuple[int, int] | None = None
    async for state in _pull_states(pull):
        if state.status == "succeeded":
            if state.total:
                yield ndjson_line(_progress(PullState(state.status, state.digest, state.total, state.total, ""), name))
            for status in ("verifying sha256 digest", "writing manifest", "success"):
                yield ndjson_line({"status": status})
        elif state.finished:
            yield ndjson_line({"error": _failure(state).message})
        elif state.total and (state.total, state.completed) != shown:
            shown = (state.total, state.completed)
            yield ndjson_line(_progress(state, name))


@endpoint("POST")
async def pull(request: HttpRequest, api: ApiRequest) -> HttpResponseBase:
    """Start (or join) a pull and follow it. A client that leaves does not stop the pull."""
    body = await parse_body(request, OllamaPullRequest)

    def start(caller: Caller) -> models.Model:
        pull_start = _service("pull_start")
        return _managed(body.target, lambda: pull_start(actor=caller.user, name=body.target))

    started = await api.run(start)
    if body.stream:
        return stream_response(_pull_lines(started, body.target), NDJSON)
    async for state in _pull_states(started):
        if state.status == "succeeded":
            return JsonResponse({"status": "success"})
        if state.finished:
            raise _failure(state)
    raise ApiError(502, "the pull failed", code="pull_failed")  # unreachable: the states end finished


# ---- Delete, copy, create -------------------------------------------------------------------


@endpoint("DELETE")
async def delete(request: HttpRequest, api: ApiRequest) -> HttpResponseBase:
    body = await parse_body(request, OllamaDeleteRequest)

    def work(caller: Caller) -> None:
        model_delete = _service("model_delete")
        _managed(body.target, lambda: model_delete(actor=caller.user, name=body.target))

    await api.run(work)
    return HttpResponse(status=200)


@endpoint("POST")
async def copy(request: HttpRequest, api: ApiRequest) -> HttpResponseBase:
    body = await parse_body(request, OllamaCopyRequest)

    def work(caller: Caller) -> None:
        model_copy = _service("model_copy")
        _managed(body.source, lambda: model_copy(actor=caller.user, source=body.source, destination=body.destination))

    await api.run(work)
    return HttpResponse(status=200)


@endpoint("POST")
async def create(request: HttpRequest, api: ApiRequest) -> HttpResponseBase:
    """Create a custom model. The work is quick, so it is done before answering; a stream
    then only reports the steps (errors have their real status code)."""
    body = await parse_body(request, OllamaCreateRequest)

    def work(caller: Caller) -> None:
        model_create = _service("model_create")
        _managed(
            body.from_ or body.target,
            lambda: model_create(
                actor=caller.user,
                name=body.target,
                modelfile=body.modelfile,
                from_=body.from_,
                system=body.system,
                template=body.template,
                parameters=body.parameters,
            ),
        )

    await api.run(work)
    if not body.stream:
        return JsonResponse({"status": "success"})

    async def lines() -> AsyncIterator[bytes]:
        for status in ("reading model metadata", "writing manifest", "success"):
            yield ndjson_line({"status": status})

    return stream_response(lines(), NDJSON)
