"""Browser path benchmark: N concurrent chats over the WebSocket vs the engine directly.

    python -m bench.chat_ws [--concurrency 1 8 32 100] [--max-tokens 64] [--repeat 3] [--backend embedded|vllm]

Prints TTFT p50/p99 (and the platform's overhead over the engine) and delivered tokens/s
(and the ratio), plus the web process's idle memory and its time from start to serving.
TTFT over the socket: from sending the ``send`` frame to the first ``delta`` frame.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import httpx
import websockets

from . import common


def main() -> None:
    args, data_dir, data = common.prepare(__doc__)
    direct_server = common.start_direct_engine(data)
    platform = common.start_platform(data_dir, vllm_url=direct_server.listening_address if args.backend == "vllm" else "")
    try:
        asyncio.run(run(args, data, platform, direct_server.listening_address))
    finally:
        platform.stop()


async def run(args: argparse.Namespace, data: dict[str, Any], platform: common.Platform, direct_url: str) -> None:
    from asgiref.sync import sync_to_async

    from chat.models import Message
    from chat.services import conversation_create

    ws_base = platform.url.replace("http://", "ws://")
    headers = {"Cookie": f"sessionid={data['session_key']}", "Origin": platform.url}

    async def open_chats(count: int) -> list[Any]:
        """One fresh conversation per request, so every prompt is the same single message as
        the direct request (a growing history would make the platform's prompts longer)."""
        conversations = [
            await sync_to_async(conversation_create)(owner=data["user"], model_name=common.BENCH_MODEL)
            for _ in range(count)
        ]
        return [
            await websockets.connect(f"{ws_base}/ws/c/{c.id}/", additional_headers=headers, max_size=None)
            for c in conversations
        ]

    async def via_socket(ws: Any, answers: list[int]) -> common.Sample:
        started = time.perf_counter()
        await ws.send(json.dumps({"type": "send", "content": common.PROMPT, "model": common.BENCH_MODEL}))
        ttft = None
        while True:
            event = json.loads(await ws.recv())
            if event["type"] == "delta" and ttft is None:
                ttft = time.perf_counter() - started
            elif event["type"] == "done":
                answers.append(event["id"])
                break
            elif event["type"] == "error":
                raise SystemExit(event["error"])
        return common.Sample(ttft=ttft or 0.0, tokens=0, seconds=time.perf_counter() - started)

    async def socket_load(concurrency: int, rounds: int) -> common.Result:
        sockets = await open_chats(concurrency * rounds)
        answers: list[int] = []
        result = await common.run_load(
            "WebSocket chat", concurrency, rounds, lambda i: via_socket(sockets.pop(), answers)
        )
        # Token counts come from the stored answers, read after the clock stopped.
        counts = {
            m.pk: m.completion_tokens async for m in Message.objects.filter(pk__in=answers).only("completion_tokens")
        }
        for sample, message_id in zip(result.samples, answers, strict=True):
            sample.tokens = counts[message_id]
        for ws in sockets:
            await ws.close()
        return result

    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=256, max_keepalive_connections=0)) as client:
        # Warm both engines (model load, first-request allocations) before measuring.
        await common.direct_chat(client, direct_url, 8)
        await socket_load(1, 1)
        rows = []
        for concurrency in args.concurrency:
            rounds = args.rounds or max(1, 24 // concurrency)
            directs, throughs = [], []
            for _run in range(args.repeat):  # interleaved: direct, then the platform, again
                directs.append(await common.run_load(
                    "engine direct", concurrency, rounds, lambda _i: common.direct_chat(client, direct_url, args.max_tokens)
                ))
                throughs.append(await socket_load(concurrency, rounds))
            rows.append((throughs, directs))
            print(f"c={concurrency}: done", flush=True)

    print()
    print(f"Machine: {common.machine()}")
    print(f"Web process: {platform.start_seconds:.2f} s from start to serving, {platform.idle_rss_mib:.0f} MiB idle RSS "
          "(before any model is loaded: engine excluded)")
    print(f"backend={args.backend}, max_tokens={args.max_tokens}, greedy decoding, flush interval as configured "
          f"(STREAM_FLUSH_MS), medians of {args.repeat} interleaved runs")
    print()
    print(common.table(rows))


if __name__ == "__main__":
    main()
