"""The current request's id: set by ``observability.asgi`` for each HTTP request and each
WebSocket connection, read by the log filter and sent to the engine as ``X-Request-ID``.
Django runs sync views in threads that copy the context, and asyncio tasks (a browser
answer's job) copy it when created, so the id follows the work."""

from __future__ import annotations

import contextvars
import logging
import re
import uuid

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_SAFE = re.compile(r"[A-Za-z0-9._-]{1,64}")


def accepted_or_new(incoming: str | None) -> str:
    """The client's (or the proxy's) id when it is a short plain token; a new one otherwise,
    so that nothing a client sends can put markup or line breaks into the logs."""
    if incoming and _SAFE.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Puts ``request_id`` on every record ("-" outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True
