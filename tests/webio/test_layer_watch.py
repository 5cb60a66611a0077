"""The channel layer watch (``webio.layer_watch``): it resyncs sockets after the layer comes
back, recovers when its own receive fails, and stops when told to or when nothing is left to
watch, so that it never keeps an event loop alive.

The layer is channels' in-memory one with faults injected by wrapping its methods: Redis
cannot be made to fail in these exact ways on demand (a receive that dies once, a send whose
cancellation comes back as a timeout, as redis-py's own timeouts can do). The real Redis
restart is ``tests/faults/test_redis_restart.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.layers import InMemoryChannelLayer

from webio import layer_watch


class Tab:
    def __init__(self) -> None:
        self.resyncs = 0

    async def resync(self) -> None:
        self.resyncs += 1


@pytest.fixture
def layer(monkeypatch: pytest.MonkeyPatch, settings: Any) -> InMemoryChannelLayer:
    settings.LAYER_PING_SECONDS = 0.05
    memory = InMemoryChannelLayer()
    monkeypatch.setattr(layer_watch, "get_channel_layer", lambda: memory)
    monkeypatch.setattr(layer_watch, "_sockets", type(layer_watch._sockets)())
    monkeypatch.setattr(layer_watch, "_watch", None)
    return memory


async def _started(tab: Tab) -> asyncio.Task[None]:
    layer_watch._sockets.add(tab)
    task = asyncio.get_running_loop().create_task(layer_watch._run())
    layer_watch._watch = task
    return task


async def test_a_receive_that_fails_is_replaced_and_the_sockets_resync_once(
    layer: InMemoryChannelLayer, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_receive = layer.receive
    failures = []

    async def receive_failing_once(channel: str) -> dict[str, Any]:
        if not failures:
            failures.append(channel)
            raise ConnectionError("Redis went away")
        return await real_receive(channel)

    monkeypatch.setattr(layer, "receive", receive_failing_once)
    tab = Tab()
    task = await _started(tab)
    try:
        for _ in range(100):
            await asyncio.sleep(0.05)
            if tab.resyncs:
                break
        # Down (its ping was never received), then up again on a new channel: one resync.
        assert tab.resyncs == 1 and len(failures) == 1
        await asyncio.sleep(0.3)
        assert tab.resyncs == 1, "a layer that stays up must not resync again"
    finally:
        task.cancel()


async def test_the_watch_stops_when_cancelled_even_if_the_layer_turns_the_cancellation_into_a_timeout(
    layer: InMemoryChannelLayer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sending = asyncio.Event()

    async def send_that_swallows_cancellation(channel: str, message: dict[str, Any]) -> None:
        sending.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise TimeoutError from None  # what an expiring client-side timeout can do

    monkeypatch.setattr(layer, "send", send_that_swallows_cancellation)
    tab = Tab()  # held here: the watch holds its sockets weakly
    task = await _started(tab)
    await asyncio.wait_for(sending.wait(), 2)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=2)
    assert task in done and task.cancelled()
    assert layer_watch._watch is None


async def test_the_watch_ends_with_the_last_socket_and_the_next_socket_starts_one(
    layer: InMemoryChannelLayer, monkeypatch: pytest.MonkeyPatch
) -> None:
    tab = Tab()
    task = await _started(tab)
    await asyncio.sleep(0.1)
    layer_watch.unwatch(tab)
    done, _ = await asyncio.wait([task], timeout=2)
    assert task in done and not task.cancelled() and task.exception() is None
    assert layer_watch._watch is None
    # watch() skips the in-memory layer in production (it cannot lose messages); here the
    # layer is in-memory only to inject faults, so let watch() see it as a Redis one.
    monkeypatch.setattr(layer_watch, "InMemoryChannelLayer", type(None))
    layer_watch.watch(tab)
    assert layer_watch._watch is not None and not layer_watch._watch.done()
    layer_watch._watch.cancel()
