"""What the pages get from Django's own middleware and the lean API stack must not lose.

The API runs with ``API_MIDDLEWARE`` only (see platform/asgi.py), so nothing there called
``request.get_host()``: a request with any Host header was served, which opens the door to
DNS-rebinding (a hostile page whose name resolves to the server's address). This middleware
checks the Host against ``ALLOWED_HOSTS`` as the pages do, answering 400 in the protocol's
JSON error shape, and sets ``X-Content-Type-Options: nosniff`` on every API response.

It is async-only, so it costs no thread hop, and does no I/O: it runs on the per-token path.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.decorators import async_only_middleware

from .errors import ApiError, Protocol, error_response

# Django's own logger for this, so logging settings that quieten it apply here too.
_security_logger = logging.getLogger("django.security.DisallowedHost")
_OPENAI_PATH = re.compile(r"^(?:/u/[^/]+)?/v1/")

GetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]


@async_only_middleware
def api_host_and_nosniff(get_response: GetResponse) -> Callable[[HttpRequest], Awaitable[HttpResponseBase]]:
    async def middleware(request: HttpRequest) -> HttpResponseBase:
        try:
            request.get_host()
        except DisallowedHost as exc:
            _security_logger.warning("%s", exc)
            protocol = Protocol.OPENAI if _OPENAI_PATH.match(request.path) else Protocol.OLLAMA
            response: HttpResponseBase = error_response(
                protocol, ApiError(400, "invalid Host header", code="invalid_host")
            )
        else:
            response = await get_response(request)
        response.setdefault("X-Content-Type-Options", "nosniff")
        return response

    return middleware
