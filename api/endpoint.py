"""How every API view starts: method check, key authentication, errors in the protocol's shape.

A view gets an ``ApiRequest`` and authenticates through it, together with its own first
database read (``api.run(...)``): one trip to the database thread, and so one database
connection, before the first byte. That connection is closed again before any model call,
so a stream never holds one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar, cast

from channels.db import database_sync_to_async
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt
from pydantic import BaseModel, ValidationError

from accounts import selectors, services
from generation.limits import GenerationRefused, check_message_count
from webio.outages import is_outage

from .errors import ApiError, Protocol, error_response, unavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key's owner."""

    user: AbstractBaseUser
    key_id: int

    @property
    def user_id(self) -> int:
        return int(self.user.pk)

    @property
    def is_admin(self) -> bool:
        return bool(getattr(self.user, "is_staff", False))


def presented_secret(request: HttpRequest, path_key: str | None) -> str:
    """The key from the ``/u/<key>/`` prefix, else from ``Authorization: Bearer``.

    The path wins: Chatbox's Ollama provider always sends ``Bearer ollama`` and can only
    carry a real key in its host URL.
    """
    if path_key:
        return path_key
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def authenticate(*, secret: str) -> Caller:
    if not secret:
        raise ApiError(
            401,
            "missing API key: send 'Authorization: Bearer <key>' or put the key in the URL as /u/<key>/",
            code="missing_api_key",
        )
    api_key = selectors.api_key_for_secret(secret=secret)
    if api_key is None:
        raise ApiError(401, "invalid API key", code="invalid_api_key")
    if selectors.user_is_pending(user=api_key.user):
        raise ApiError(403, "this account is waiting for an administrator's approval", code="account_pending")
    services.api_key_mark_used(api_key=api_key)
    return Caller(user=api_key.user, key_id=api_key.pk)


class ApiRequest:
    """The caller's credentials, checked on first use (see the module docstring)."""

    def __init__(self, request: HttpRequest, *, path_key: str | None, admin: bool) -> None:
        self._secret = presented_secret(request, path_key)
        self._admin = admin
        self.caller: Caller | None = None

    async def run(self, work: Callable[[Caller], T]) -> T:
        """Authenticate (once) and run ``work(caller)`` in the same trip to the database."""

        def job() -> T:
            if self.caller is None:
                self.caller = authenticate(secret=self._secret)
            if self._admin and not self.caller.is_admin:
                raise ApiError(403, "this action needs an administrator's API key", code="forbidden")
            return work(self.caller)

        # database_sync_to_async closes the connection afterwards (CONN_MAX_AGE=0), so the
        # model call that follows never holds one.
        return cast(T, await database_sync_to_async(job)())

    async def authenticate(self) -> Caller:
        return await self.run(lambda caller: caller)

    @property
    def user_id(self) -> int:
        if self.caller is None:
            raise RuntimeError("the caller has not been authenticated yet")
        return self.caller.user_id


# Bodies larger than this are parsed in a worker thread: validating a 16 MiB chat history
# takes long enough to stall every other request on the event loop.
PARSE_INLINE_BYTES = 64 * 1024


async def parse_body(request: HttpRequest, schema: type[M]) -> M:
    """The JSON body validated against ``schema``; 400 or 413 with a readable message.
    A body with more messages than one request may carry is refused before anything else
    is done with them (413)."""
    try:
        raw = request.body
    except RequestDataTooBig as exc:
        raise ApiError(413, "request body is too large", code="request_too_large") from exc
    if not raw.strip():
        raise ApiError(400, "missing request body", code="invalid_request")
    body = _validate(raw, schema) if len(raw) <= PARSE_INLINE_BYTES else await asyncio.to_thread(_validate, raw, schema)
    messages = getattr(body, "messages", None)
    if isinstance(messages, list):
        try:
            check_message_count(len(messages))
        except GenerationRefused as exc:
            raise ApiError(exc.status, exc.message, code=exc.code, param="messages") from exc
    return body


def _validate(raw: bytes, schema: type[M]) -> M:
    try:
        return schema.model_validate_json(raw)
    except ValidationError as exc:
        raise describe_validation_error(exc) from exc


_TYPE_LABELS = frozenset({"str", "int", "float", "bool", "none", "list", "dict"})


def _is_field(part: int | str) -> bool:
    # Pydantic names union members in error locations ("content", "str"); clients only know
    # fields. Our field names are lower-case identifiers, never type labels.
    text = str(part)
    return not (text in _TYPE_LABELS or "[" in text or "-" in text or text[:1].isupper())


def describe_validation_error(exc: ValidationError) -> ApiError:
    # The deepest error says most: for a union, the member that got furthest.
    first = max(exc.errors(include_url=False), key=lambda error: len(error["loc"]))
    message = first["msg"].removeprefix("Value error, ").removeprefix("Invalid JSON: ")
    if first["type"] == "json_invalid":
        return ApiError(400, f"invalid JSON: {message}", code="invalid_json")
    field = ".".join(str(part) for part in first["loc"] if _is_field(part))
    if not field:
        return ApiError(400, f"invalid request: {message}", code="invalid_request")
    return ApiError(400, f"invalid value for '{field}': {message}", code="invalid_request", param=field)


ApiView = Callable[..., Awaitable[HttpResponseBase]]


def api_endpoint(protocol: Protocol, *methods: str, admin: bool = False) -> Callable[[ApiView], ApiView]:
    """Wrap an async API view: 405 for other methods, errors in ``protocol``'s shape, no CSRF
    (callers prove themselves with keys, not cookies). ``admin`` views refuse other keys (403)."""
    allowed = frozenset(methods) | ({"HEAD"} if "GET" in methods else frozenset())
    allow_header = ", ".join(sorted(allowed))

    def decorate(view: ApiView) -> ApiView:
        @wraps(view)
        async def wrapper(request: HttpRequest, *args: Any, key: str | None = None, **kwargs: Any) -> HttpResponseBase:
            if request.method not in allowed:
                refusal = error_response(protocol, ApiError(405, f"method {request.method} not allowed"))
                refusal["Allow"] = allow_header
                return refusal
            api = ApiRequest(request, path_key=key, admin=admin)
            try:
                response = await view(request, api, *args, **kwargs)
            except ApiError as exc:
                return error_response(protocol, await _ranked(api, exc))
            except Exception as exc:
                if is_outage(exc):
                    # PostgreSQL or Redis restarting: the same request will work in a moment.
                    logger.warning("API request %s %s: a service is unreachable: %s", request.method, request.path, exc)
                    return error_response(protocol, unavailable())
                logger.exception("API request %s %s failed", request.method, request.path)
                return error_response(protocol, ApiError(500, "internal error"))
            if api.caller is None:  # a view must never answer before the key was checked
                logger.error("%s answered without authenticating", view.__qualname__)
                return error_response(protocol, ApiError(500, "internal error"))
            return response

        return csrf_exempt(wrapper)

    return decorate


async def _ranked(api: ApiRequest, error: ApiError) -> ApiError:
    """A bad key outranks a bad body: check the key before reporting anything else."""
    if api.caller is not None or error.status in (401, 403):
        return error
    try:
        await api.authenticate()
    except ApiError as auth_error:
        return auth_error
    return error
