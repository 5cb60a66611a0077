"""WebSocket doors that survive hostile frames, and the answer for sockets nobody serves.

``SafeJsonConsumer`` is ``AsyncJsonWebsocketConsumer`` with a guarded ``receive``: a frame
that is binary, too large (``WS_MAX_FRAME_BYTES``), not JSON, nested too deeply, carries
unpaired surrogates or NULs, or is not a JSON object gets one
``{"type": "error", "error": "<message>"}`` frame and the socket stays open; only a JSON
object reaches ``receive_json``. An exception that escapes a handler is logged and answered
the same way, instead of channels' close with 1011. Its messages are in the language of the
page that opened the socket: the language cookie (kept in step with a signed-in person's
choice by ``accounts.language``), else the browser's ``Accept-Language``.

``RefuseConsumer`` is a plain ASGI application for the catch-all socket route: it accepts
the handshake and closes at once with code 4404. A close *before* accepting would reach the
client as an HTTP 403 from daphne, which a browser cannot read (its WebSocket only sees
close code 1006) and which says "forbidden" rather than "no such socket".
"""

from __future__ import annotations

import logging
from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.http import HttpRequest
from django.utils import translation
from django.utils.translation import gettext as _

from .json import BadJson, parse_json
from .outages import is_outage

__all__ = ["NOT_FOUND_CLOSE_CODE", "RefuseConsumer", "SafeJsonConsumer"]

logger = logging.getLogger(__name__)

NOT_FOUND_CLOSE_CODE = 4404


def language_for_scope(scope: dict[str, Any]) -> str:
    """The language Django would pick for an HTTP request with this socket's cookie and headers."""
    request = HttpRequest()
    request.COOKIES = dict(scope.get("cookies") or {})
    for name, value in scope.get("headers") or ():
        if name == b"accept-language":
            request.META["HTTP_ACCEPT_LANGUAGE"] = value.decode("latin-1")[:500]
    return translation.get_language_from_request(request)


class SafeJsonConsumer(AsyncJsonWebsocketConsumer):
    """JSON-object frames in, ``{"type": "error", ...}`` out for everything else."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # Everything this socket says, also from the jobs it starts, in the page's language.
        with translation.override(language_for_scope(scope)):
            await super().__call__(scope, receive, send)

    #: How deeply a frame may nest ``[``/``{``; no request of ours goes deeper than 2.
    max_depth = 32

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        # A message with neither key breaks ASGI's rule, but must not crash the socket either
        # (channels' own version raises KeyError).
        text = message.get("text")
        await self.receive(text_data=text, bytes_data=None if text is not None else message.get("bytes") or b"")

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        if text_data is None:
            await self.send_error(_("Only text frames with JSON are accepted on this socket."))
            return
        try:
            content = parse_json(text_data, max_bytes=settings.WS_MAX_FRAME_BYTES, max_depth=self.max_depth)
        except BadJson as exc:
            await self.send_error(exc.message)
            return
        if not isinstance(content, dict):
            await self.send_error(_("A request must be a JSON object, such as {\"type\": \"...\"}."))
            return
        try:
            await self.receive_json(content, **kwargs)
        except Exception as exc:
            if is_outage(exc):
                logger.warning("%s: a service is unreachable: %s", type(self).__qualname__, exc)
                await self.send_error(_("The server cannot reach its database at the moment. Please try again in a few seconds."))
                return
            logger.exception("%s failed on a frame", type(self).__qualname__)
            await self.send_error(_("The request failed on the server. Please try again."))

    async def send_error(self, message: str) -> None:
        await self.send_json({"type": "error", "error": message})


class RefuseConsumer:
    """ASGI app for socket paths nobody serves: accept, then close with ``code`` (4404)."""

    def __init__(self, code: int = NOT_FOUND_CLOSE_CODE) -> None:
        self.code = code

    @classmethod
    def as_asgi(cls, code: int = NOT_FOUND_CLOSE_CODE) -> Any:
        """Like a consumer's ``as_asgi()`` (typed ``Any`` too, which ``path()`` accepts)."""
        return cls(code)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            raise ValueError(f"RefuseConsumer serves WebSockets, not {scope['type']!r}")
        while True:
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.accept"})
                await send({"type": "websocket.close", "code": self.code})
            elif message["type"] == "websocket.disconnect":
                return
            # websocket.receive: a frame that crossed the close on the wire; ignored.
