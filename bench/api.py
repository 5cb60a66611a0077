"""API path benchmark: /v1/chat/completions (SSE) and /api/chat (NDJSON) through the
platform vs the same requests straight to the engine, at several concurrencies.

    python -m bench.api [--concurrency 1 8 32] [--max-tokens 64]

TTFT: from sending the request to the first byte of content. Tokens/s: completion tokens
delivered per second of wall time across all clients.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import httpx

from . import common


def main() -> None:
    args, data_dir, data = common.prepare(__doc__)
    from accounts.services import api_key_create

    _key, secret = api_key_create(user=data["user"], name="bench")
    direct_server = common.start_direct_engine(data)
    platform = common.start_platform(data_dir, vllm_url=direct_server.listening_address if args.backend == "vllm" else "")
    try:
        asyncio.run(run(args, data, platform, secret, direct_server.listening_address))
    finally:
        platform.stop()


async def openai_sse(client: httpx.AsyncClient, url: str, secret: str, max_tokens: int) -> common.Sample:
    body = {
        "model": common.BENCH_MODEL,
        "messages": [{"role": "user", "content": common.PROMPT}],
        "max_tokens": max_tokens,
        "stream": True,
    }
    started = time.perf_counter()
    ttft = None
    tokens = 0
    async with client.stream(
        "POST", url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {secret}"}
    ) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[5:])
            if ttft is None and any((c.get("delta") or {}).get("content") for c in chunk.get("choices", [])):
                ttft = time.perf_counter() - started
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    return common.Sample(ttft=ttft or 0.0, tokens=tokens, seconds=time.perf_counter() - started)


async def ollama_ndjson(client: httpx.AsyncClient, url: str, secret: str, max_tokens: int) -> common.Sample:
    body = {
        "model": common.BENCH_MODEL,
        "messages": [{"role": "user", "content": common.PROMPT}],
        "options": {"num_predict": max_tokens},
    }
    started = time.perf_counter()
    ttft = None
    tokens = 0
    async with client.stream("POST", url + "/api/chat", json=body, headers={"Authorization": f"Bearer {secret}"}) as response:
        async for line in response.aiter_lines():
            if not line:
                continue
            chunk = json.loads(line)
            if ttft is None and (chunk.get("message") or {}).get("content"):
                ttft = time.perf_counter() - started
            if chunk.get("done"):
                tokens = chunk.get("eval_count", 0)
    return common.Sample(ttft=ttft or 0.0, tokens=tokens, seconds=time.perf_counter() - started)


async def run(args: argparse.Namespace, data: dict[str, Any], platform: common.Platform, secret: str, direct_url: str) -> None:
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        await common.direct_chat(client, direct_url, 8)
        await openai_sse(client, platform.url, secret, 8)
        rows = []
        for concurrency in args.concurrency:
            rounds = args.rounds or max(1, 24 // concurrency)
            directs, sses, ndjsons = [], [], []
            for _run in range(args.repeat):  # interleaved: direct, then each platform path, again
                directs.append(await common.run_load(
                    "engine direct", concurrency, rounds, lambda _i: common.direct_chat(client, direct_url, args.max_tokens)
                ))
                sses.append(await common.run_load(
                    "/v1/chat/completions", concurrency, rounds,
                    lambda _i: openai_sse(client, platform.url, secret, args.max_tokens),
                ))
                ndjsons.append(await common.run_load(
                    "/api/chat", concurrency, rounds, lambda _i: ollama_ndjson(client, platform.url, secret, args.max_tokens)
                ))
            rows += [(sses, directs), (ndjsons, directs)]
            print(f"c={concurrency}: done", flush=True)
    print()
    print(f"Machine: {common.machine()}")
    print(f"backend={args.backend}, max_tokens={args.max_tokens}, greedy decoding, medians of {args.repeat} interleaved runs")
    print()
    print(common.table(rows))


if __name__ == "__main__":
    main()
