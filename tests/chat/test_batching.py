"""Token deltas are batched: a fast model must not flood the sockets."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from channels.layers import InMemoryChannelLayer

from chat.generation import _Answer

pytestmark = pytest.mark.asyncio


async def test_a_burst_of_tokens_becomes_few_socket_messages(settings: Any) -> None:
    settings.STREAM_FLUSH_MS = 40
    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add("conv.test", channel)
    answer = _Answer(layer, "conv.test", message_id=1)
    ticker = asyncio.create_task(answer.flush_periodically())

    tokens = [f"tok{i} " for i in range(200)]
    for token in tokens:  # 200 tokens in ~0.2 s: 1 ms apart, much faster than the flush interval
        await answer.add(token)
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.1)
    ticker.cancel()

    frames = []
    while True:
        try:
            frames.append(json.loads((await asyncio.wait_for(layer.receive(channel), 0.05))["text"]))
        except asyncio.TimeoutError:
            break
    assert frames[0]["text"] == "tok0 ", "the first token goes out at once"
    assert len(frames) <= 15, f"{len(frames)} socket messages for 200 tokens"
    text = ""
    for frame in frames:
        assert frame["start"] == len(text)
        text += frame["text"]
    assert text == "".join(tokens)
