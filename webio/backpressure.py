"""A bound on what daphne holds for a WebSocket client that does not keep up.

Why this exists: daphne (autobahn over Twisted) writes every frame the application sends
straight into the connection's transport, and Twisted queues whatever the kernel will not
take, in memory and without limit. daphne registers no producer that could push back,
autobahn's options bound incoming frames only, and ASGI gives the application no way to
see the queue. The one thing that ends such a connection is autobahn's auto-ping: a ping
queued behind the backlog goes unanswered for ``--ping-timeout`` (30 s), sent 20 s after the
client last sent something; a client that sends anything more often is never pinged.
Measured (a 1 KiB frame every 0.5 ms to a client reading one frame a second): the kernel
takes ~2 MB on loopback, then daphne's RSS grows ~1.7 MB/s, until the ping drop at 50 s, or
for as long as the client sends a frame every 10 s.

``limit_websocket_backlog`` wraps daphne's ``WebSocketProtocol.serverSend``, the method
every ``websocket.send`` goes through. Before a frame is written it counts the bytes still
waiting for this client, in Twisted's buffer and in the kernel's send queue (``TIOCOUTQ``,
Linux; elsewhere only Twisted's). The kernel's share counts because send buffers are
autotuned up to ``net.ipv4.tcp_wmem`` (4 MB): at chat rates daphne's own buffer would only
start growing minutes after the client fell behind. Over ``WS_MAX_BACKLOG_BYTES`` the frame
and every later one is dropped and the socket is closed with the platform's "try again
later" code (4503, ``webio.outages``), so at most the limit plus one frame is held. The close
frame queues behind the backlog: a client that catches up within autobahn's close handshake
timeout (1 s) reads 4503, any other is cut off (its browser sees 1006). The chat page
reconnects on both (``static/js/chat/socket.js``) and is sent the running answer's snapshot,
or the finished answer, on connect (``chat.consumers``). Generations never wait for a
socket, so nothing is lost.

HTTP responses have the same hole: daphne writes every body message the application sends
at once, so a streamed answer (``/api/chat``, ``/v1/chat/completions``) or a download to a
client that reads slowly piles up in Twisted's buffer. There the sender can wait, because an
HTTP response has one reader and nobody else needs the bytes: ``pace_http_responses`` wraps
daphne's ``Server.handle_reply`` (the coroutine behind an HTTP application's ``send``) so
that a body message waits while the client is more than ``HTTP_MAX_BACKLOG_BYTES`` behind.
The streaming view then stops taking tokens, so at most the limit plus one chunk is held per
response. The backlog is measured only once the bytes written since the last measurement
could have taken it past the limit (it cannot grow by more than what was written), so a
client that keeps up costs no system call per token; a download is paced to the client's speed. A client that takes nothing at all for
``HTTP_STALL_SECONDS`` is cut off (``abortConnection``): Django is told of the disconnect,
the stream is cancelled, and with it the engine request (``api.generation.guarded``).

The wrappers rely on daphne and Twisted internals (``serverSend``, ``Server.handle_reply``,
the transport's ``dataBuffer``/``offset``/``_tempDataLen``). Where they are missing they log
once and let everything through, as before.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import struct
from collections.abc import Callable
from typing import Any

from .outages import CLOSE_TRY_AGAIN

try:
    import fcntl
    import termios

    _OUTQ: int | None = termios.TIOCOUTQ  # SIOCOUTQ on sockets: bytes not yet acknowledged
except (ImportError, AttributeError):  # not Linux, or no termios (Windows)
    _OUTQ = None

__all__ = ["limit_websocket_backlog", "pace_http_responses", "unsent_bytes"]

logger = logging.getLogger(__name__)

_WRAPPED = "_platform_backlog_limit"  # on a wrapper: installed already
# How often a paused HTTP response looks at its client's backlog again: a slow client's
# response then moves in steps of at most this, and a fast one never waits at all.
PACE_POLL_SECONDS = 0.02
_ROOM = "_platform_room"  # on an HTTP request: bytes it may still write before measuring again
_PACED = "_platform_paced"  # on an HTTP request: its response has waited for the client once
_CLOSING = "_platform_backlog_closing"  # on a protocol: closed for its backlog, frames dropped
_warned: set[str] = set()


def _warn_once(key: str, message: str, *args: object) -> None:
    if key not in _warned:
        _warned.add(key)
        logger.warning(message, *args)


def unsent_bytes(transport: Any) -> tuple[int, int] | None:
    """(in this process, in the kernel): bytes written to ``transport`` that the peer has not
    taken yet; None when the transport is not one whose buffer this knows how to read."""
    tcp = transport
    # TLS (twisted.protocols.tls) wraps the TCP transport, where the ciphertext queues.
    while tcp is not None and not hasattr(tcp, "dataBuffer"):
        tcp = getattr(tcp, "transport", None)
    try:
        in_process = len(tcp.dataBuffer) - tcp.offset + tcp._tempDataLen
    except (AttributeError, TypeError):
        return None
    in_kernel = 0
    if _OUTQ is not None:
        try:
            in_kernel = struct.unpack("i", fcntl.ioctl(tcp.fileno(), _OUTQ, b"\0\0\0\0"))[0]
        except (AttributeError, OSError):  # closed meanwhile, or not a socket
            pass
    return in_process, in_kernel


def limit_websocket_backlog(*, max_bytes: int) -> bool:
    """Close daphne's WebSocket connections whose unsent bytes pass ``max_bytes`` (4503).
    Returns whether the limit is in force."""
    try:
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:
        logger.info("daphne is not installed: WS_MAX_BACKLOG_BYTES is not enforced")
        return False
    original: Callable[..., None] | None = getattr(WebSocketProtocol, "serverSend", None)
    if original is None:
        _warn_once("api", "daphne's WebSocketProtocol has no serverSend: WS_MAX_BACKLOG_BYTES is not enforced")
        return False
    if getattr(original, _WRAPPED, False):  # installed already (the ASGI module loaded twice)
        return True

    @functools.wraps(original)
    def server_send(self: Any, *args: Any, **kwargs: Any) -> None:
        if getattr(self, _CLOSING, False):
            return  # closed for its backlog: the client resyncs when it reconnects
        open_state = getattr(self, "STATE_OPEN", None)  # autobahn's; absent: no check
        if open_state is not None and getattr(self, "state", None) == open_state:
            backlog = unsent_bytes(getattr(self, "transport", None))
            if backlog is None:
                _warn_once("transport", "cannot read the send buffer of %r: WS_MAX_BACKLOG_BYTES is not enforced",
                           type(getattr(self, "transport", None)))
            elif sum(backlog) > max_bytes:
                setattr(self, _CLOSING, True)
                in_process, in_kernel = backlog
                logger.warning(
                    "closing the WebSocket %s of %s with %d: %d bytes unsent (%d in this process), "
                    "over WS_MAX_BACKLOG_BYTES=%d",
                    _path_of(self), _client_of(self), CLOSE_TRY_AGAIN, in_process + in_kernel, in_process, max_bytes,
                )
                # autobahn's sendClose takes 1000 and 3000-4999 only (raises on 1013).
                self.sendClose(code=CLOSE_TRY_AGAIN, reason="too far behind, reconnect")
                return
        original(self, *args, **kwargs)

    setattr(server_send, _WRAPPED, True)
    WebSocketProtocol.serverSend = server_send
    return True


async def _wait_for_client(protocol: Any, *, max_bytes: int, stall_seconds: float) -> int | None:
    """Wait while more than ``max_bytes`` of ``protocol``'s response are unsent; then return how
    many are. None when the connection is gone, or was cut off here for taking nothing for
    ``stall_seconds``."""
    transport = getattr(getattr(protocol, "channel", None), "transport", None)
    if transport is None:
        return 0  # gone already: daphne's own handle_reply drops the message
    backlog = unsent_bytes(transport)
    if backlog is None:
        _warn_once("http-transport", "cannot read the send buffer of %r: HTTP_MAX_BACKLOG_BYTES is not enforced",
                   type(transport))
        return 0
    behind = peak = sum(backlog)
    if behind <= max_bytes:
        return behind
    if not getattr(protocol, _PACED, False):  # once a response: a slow client pauses at every chunk
        setattr(protocol, _PACED, True)
        logger.info("pacing the response to %s %s: %d bytes unsent, over HTTP_MAX_BACKLOG_BYTES=%d",
                    _client_of(protocol), _path_of(protocol), behind, max_bytes)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + stall_seconds
    while True:
        await asyncio.sleep(PACE_POLL_SECONDS)
        if getattr(protocol, "channel", None) is None or getattr(protocol, "finished", False):
            return None  # the client went away meanwhile; daphne has told the application
        backlog = unsent_bytes(transport)
        unsent = sum(backlog) if backlog is not None else 0
        if unsent <= max_bytes:
            return unsent
        if unsent < behind:  # the client took something: it is slow, not stalled
            deadline = loop.time() + stall_seconds
        behind, peak = unsent, max(peak, unsent)
        if loop.time() > deadline:
            logger.warning(
                "cutting off the response to %s %s: it took nothing for %.0f s (HTTP_STALL_SECONDS), "
                "%d bytes unsent (at most %d)",
                _client_of(protocol), _path_of(protocol), stall_seconds, behind, peak,
            )
            transport.abortConnection()  # not loseConnection: that would wait for the backlog
            return None


def _client_of(protocol: Any) -> str:
    address = getattr(protocol, "client_addr", None)  # daphne's [host, port], or None (a UNIX socket)
    return f"{address[0]}:{address[1]}" if isinstance(address, (list, tuple)) and len(address) == 2 else "-"


def _path_of(protocol: Any) -> str:
    path = getattr(protocol, "path", b"")
    return path.decode("ascii", "replace") if isinstance(path, bytes) else str(path)


def pace_http_responses(*, max_bytes: int, stall_seconds: float) -> bool:
    """Make HTTP response bodies wait for a client more than ``max_bytes`` behind, and cut off
    one that takes nothing for ``stall_seconds``. Returns whether pacing is in force."""
    try:
        from daphne.http_protocol import WebRequest
        from daphne.server import Server
    except ImportError:
        logger.info("daphne is not installed: HTTP_MAX_BACKLOG_BYTES is not enforced")
        return False
    original: Callable[..., Any] | None = getattr(Server, "handle_reply", None)
    if original is None or not asyncio.iscoroutinefunction(original):
        _warn_once("http-api", "daphne's Server.handle_reply is not a coroutine: HTTP_MAX_BACKLOG_BYTES is not enforced")
        return False
    if getattr(original, _WRAPPED, False):
        return True

    @functools.wraps(original)
    async def handle_reply(self: Any, protocol: Any, message: Any) -> None:
        if isinstance(protocol, WebRequest) and isinstance(message, dict) and message.get("type") == "http.response.body":
            # Room left under the limit as last measured, less what was written since.
            room: int = getattr(protocol, _ROOM, max_bytes)
            if room < 0:
                unsent = await _wait_for_client(protocol, max_bytes=max_bytes, stall_seconds=stall_seconds)
                if unsent is None:
                    return
                room = max_bytes - unsent
            body = message.get("body", b"")
            setattr(protocol, _ROOM, room - (len(body) if isinstance(body, bytes) else 0))
        await original(self, protocol, message)

    setattr(handle_reply, _WRAPPED, True)
    Server.handle_reply = handle_reply
    return True
