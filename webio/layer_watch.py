"""Notice when the channel layer (Redis) came back, and make this process's sockets resync.

Redis pub/sub is fire-and-forget: while Redis restarts, every delta, "done" and pull event
published meanwhile is gone, and the sockets themselves never notice (channels_redis keeps
them subscribed and re-subscribes once Redis answers again). Without help a tab would show an
answer "generating" for ever. So each web process pings itself through the layer once a
second (``LAYER_PING_SECONDS``); when a ping fails or does not come back, the layer is down;
when one comes back again, every socket registered here gets ``resync()`` called, and reads
the state from the database and from the running jobs again, as on a fresh connect.

The in-memory layer (embedded mode) cannot lose messages: nothing is watched there.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Protocol

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings

from observability import metrics

logger = logging.getLogger(__name__)


class Resyncable(Protocol):
    async def resync(self) -> None: ...


_sockets: weakref.WeakSet[Resyncable] = weakref.WeakSet()
_watch: asyncio.Task[None] | None = None


def watch(socket: Resyncable) -> None:
    """Resync ``socket`` whenever the layer recovers (held weakly: a closed socket drops out).
    Starts this process's watcher on first use, on the running event loop."""
    global _watch
    _sockets.add(socket)
    if _watch is None or _watch.done():
        layer = get_channel_layer()
        if layer is None or isinstance(layer, InMemoryChannelLayer):
            return
        _watch = asyncio.get_running_loop().create_task(_run(), name="channel-layer-watch")


def unwatch(socket: Resyncable) -> None:
    _sockets.discard(socket)


async def _resync_all() -> None:
    sockets = list(_sockets)
    logger.warning("the channel layer is back: %d sockets of this process resync", len(sockets))
    for socket in sockets:
        try:
            await socket.resync()
        except Exception:  # one socket's trouble must not keep the others stale
            logger.warning("a socket could not resync", exc_info=True)


async def _run() -> None:
    global _watch
    layer = get_channel_layer()
    assert layer is not None
    interval = settings.LAYER_PING_SECONDS
    this = asyncio.current_task()
    assert this is not None
    channel: str | None = None
    received = 0
    arrived = asyncio.Event()

    async def receive(name: str) -> None:
        nonlocal received
        while True:
            message = await layer.receive(name)
            received = max(received, int(message.get("n", 0)))
            arrived.set()

    receiver: asyncio.Task[None] | None = None
    up = True
    sent = 0
    try:
        while _sockets:  # nothing to resync: stop; the next socket starts a new watch
            try:
                if receiver is None or receiver.done():  # first, or its receive failed (Redis went away)
                    channel = await layer.new_channel("watch.")
                    receiver = asyncio.create_task(receive(channel))
                assert channel is not None
                sent += 1
                arrived.clear()
                await layer.send(channel, {"type": "layer.ping", "n": sent})
                async with asyncio.timeout(max(2 * interval, 1.0)):
                    while received < sent:
                        await arrived.wait()
                        arrived.clear()
                ok = True
            except Exception:  # Redis down (ConnectionError), or the ping was lost (timeout)
                # redis-py's own timeouts can turn a cancellation into a TimeoutError: a watch
                # that was told to stop must stop, or it would keep the event loop alive.
                if this.cancelling():
                    raise asyncio.CancelledError from None
                ok = False
            metrics.channel_layer_up.set(1 if ok else 0)
            if ok and not up:
                await _resync_all()
            elif up and not ok:
                logger.warning("the channel layer (Redis) does not answer; sockets will resync when it is back")
            up = ok
            await asyncio.sleep(interval)
    finally:
        if receiver is not None:
            receiver.cancel()
        if _watch is this:
            _watch = None
