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

The wrapper relies on daphne and Twisted internals (``serverSend``, the transport's
``dataBuffer``/``offset``/``_tempDataLen``). Where they are missing it logs once and lets
every frame through, as before.
"""

from __future__ import annotations

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

__all__ = ["limit_websocket_backlog", "unsent_bytes"]

logger = logging.getLogger(__name__)

_WRAPPED = "_platform_backlog_limit"  # on the wrapper: the limit it enforces
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
                path = getattr(self, "path", b"")
                logger.warning(
                    "closing the WebSocket %s of %s with %d: %d bytes unsent (%d in this process), "
                    "over WS_MAX_BACKLOG_BYTES=%d",
                    path.decode("ascii", "replace") if isinstance(path, bytes) else path,
                    getattr(self, "client_addr", None), CLOSE_TRY_AGAIN, in_process + in_kernel, in_process, max_bytes,
                )
                # autobahn's sendClose takes 1000 and 3000-4999 only (raises on 1013).
                self.sendClose(code=CLOSE_TRY_AGAIN, reason="too far behind, reconnect")
                return
        original(self, *args, **kwargs)

    setattr(server_send, _WRAPPED, True)
    WebSocketProtocol.serverSend = server_send
    return True
