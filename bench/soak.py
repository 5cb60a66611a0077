"""Soak: many browser sessions over WebSockets for minutes, plus a trickle of API calls.

    python -m bench.soak [--sessions 100] [--minutes 10] [--tokens 48] [--rate 20]

The engine is a stand-in that emits tokens at a fixed rate (``--rate`` per second per
answer), so that what is measured is the platform's own cost on this machine, not llama.cpp's
(the real engine cannot run 100 answers at once on 2 cores). It runs in its own process
and speaks the OpenAI protocol; the platform reaches it through its vLLM backend. Each token
carries its sequence number and the time it was sent, so the clients can check for lost,
doubled or reordered text and measure each token's delay.

Checked and printed: answers finished, API calls, deltas that did not continue the text
exactly (lost, doubled or out of order), answers whose stored text differs from what was
streamed, p50/p99 token delay (engine send to browser receive), and the web process's resident
memory after warm-up and at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets

from . import common


def _engine(port: int, rate: float) -> None:
    """A fixed-rate OpenAI-compatible server (asyncio streams, no framework)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            head = request.decode("latin-1")
            length = next((int(line.split(":")[1]) for line in head.split("\r\n") if line.lower().startswith("content-length:")), 0)
            body = json.loads(await reader.readexactly(length)) if length else {}
            path = head.split(" ")[1]
            if path.endswith("/tokenize"):
                text = json.dumps(body)
                payload = json.dumps({"tokens": list(range(max(1, len(text) // 4)))}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(payload) + payload)
            elif path.endswith("/models"):
                payload = json.dumps({"object": "list", "data": [{"id": "bench", "object": "model"}]}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(payload) + payload)
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
                tokens = int(body.get("max_tokens") or 16)
                for seq in range(tokens):
                    await asyncio.sleep(1 / rate)
                    chunk = {"choices": [{"index": 0, "delta": {"content": f"{seq}@{time.time():.4f} "}}]}
                    writer.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                    await writer.drain()
                done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}],
                        "usage": {"prompt_tokens": 10, "completion_tokens": tokens}}
                writer.write(b"data: " + json.dumps(done).encode() + b"\n\ndata: [DONE]\n\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


#: Answers per chat before a tab opens its next chat (a new socket), and chats per tab.
ROUNDS_PER_CHAT = 10
CHATS_PER_SESSION = 3


@dataclass
class Stats:
    answers: int = 0
    api_calls: int = 0
    api_errors: int = 0
    bad_deltas: int = 0
    errors: list[str] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    # Send to first delta, per answer: with more tabs than engine slots this is the queueing.
    first_deltas: list[float] = field(default_factory=list)
    streamed: dict[int, str] = field(default_factory=dict)


def _check_tokens(text: str, expected_seq: int, received_at: float, stats: Stats) -> int:
    """Tokens are "seq@sent "; returns the next expected sequence number."""
    for token in text.split():
        seq, _, sent = token.partition("@")
        if int(seq) != expected_seq:
            stats.bad_deltas += 1
        expected_seq = int(seq) + 1
        stats.delays.append(received_at - float(sent))
    return expected_seq


async def _session(index: int, url: str, cookie: str, chats: list[str], stop_at: float, stats: Stats, real: bool) -> None:
    """One browser tab: one socket per open chat, answers one after another; every
    ``ROUNDS_PER_CHAT`` answers it opens its next chat (a new socket), as people do."""
    ws_url = url.replace("http://", "ws://")
    headers = {"Cookie": f"sessionid={cookie}", "Origin": url}
    round_ = 0
    while time.monotonic() < stop_at:
        chat = chats[(round_ // ROUNDS_PER_CHAT) % len(chats)]
        async with websockets.connect(f"{ws_url}/ws/c/{chat}/", additional_headers=headers, max_size=None) as ws:
            json.loads(await ws.recv())  # access
            for _ in range(ROUNDS_PER_CHAT):
                if time.monotonic() >= stop_at:
                    return
                round_ += 1
                if not await _answer(ws, f"session {index} round {round_}", stats, real):
                    return


async def _answer(ws: Any, content: str, stats: Stats, real: bool) -> bool:
    await ws.send(json.dumps({"type": "send", "content": content, "model": common.BENCH_MODEL}))
    text, seq, answer_id, last = "", 0, None, time.time()
    sent_at = last
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), 300))
        now = time.time()
        if event["type"] == "delta" and event["id"] == answer_id:
            if event["start"] != len(text):
                stats.bad_deltas += 1
            if not text:
                stats.first_deltas.append(now - sent_at)
            text = text[: event["start"]] + event["text"]
            if real:  # no timestamps in a real model's words: the gap between deltas instead
                stats.delays.append(now - last)
                last = now
            else:
                seq = _check_tokens(event["text"], seq, now, stats)
        elif event["type"] == "message" and event["message"]["role"] == "assistant":
            answer_id, last = event["message"]["id"], now
        elif event["type"] == "done" and event["id"] == answer_id:
            if event["status"] != "complete" or event["content"] != text:
                stats.errors.append(f"answer {answer_id}: {event['status']} {event.get('error', '')}")
            stats.streamed[answer_id] = text
            stats.answers += 1
            return True
        elif event["type"] == "error":
            stats.errors.append(event["error"])
            return False


async def _api_trickle(url: str, key: str, stop_at: float, stats: Stats) -> None:
    async with httpx.AsyncClient(timeout=60) as client:
        while time.monotonic() < stop_at:
            response = await client.post(url + "/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                                         json={"model": common.BENCH_MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8})
            stats.api_calls += 1
            if response.status_code != 200:
                stats.api_errors += 1
            await asyncio.sleep(1.0)


async def _memory(pid: int, stop_at: float, samples: list[tuple[float, float]]) -> None:
    started = time.monotonic()
    while time.monotonic() < stop_at:
        samples.append((time.monotonic() - started, common.rss_mib(pid)))
        await asyncio.sleep(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--tokens", type=int, default=48, help="tokens per answer")
    parser.add_argument("--rate", type=float, default=20, help="tokens per second per answer")
    parser.add_argument("--engine", choices=["stand-in", "real"], default="stand-in",
                        help="real: the bundled model in the platform's embedded engine (use as many sessions as saturate it)")
    args = parser.parse_args()
    data_dir = common.temp_data_dir()
    common.setup_django(data_dir)
    real = args.engine == "real"
    data = common.prepare_data(args.tokens, backend="embedded" if real else "vllm")
    env = {
        "MAX_GENERATIONS_PER_MODEL": str(args.sessions * 2),
        "MAX_CONCURRENT_GENERATIONS_PER_USER": str(args.sessions * 2),  # one bench user has every tab
        "CHAT_AUTO_TITLE": "false",
    }
    engine = None
    if not real:
        port = common.free_port()
        engine = multiprocessing.Process(target=_engine, args=(port, args.rate), daemon=True)
        engine.start()
    platform = common.start_platform(data_dir, vllm_url="" if real else f"http://127.0.0.1:{port}", extra_env=env)
    try:
        stats, memory = asyncio.run(_run(args, data, platform))
    finally:
        platform.stop()
        if engine is not None:
            engine.terminate()
    _report(args, stats, memory)


async def _run(args: argparse.Namespace, data: dict[str, Any], platform: common.Platform) -> tuple[Stats, list[tuple[float, float]]]:
    from asgiref.sync import sync_to_async

    from accounts.services import api_key_create
    from chat.services import conversation_create

    create = sync_to_async(conversation_create)
    chats = [
        [str((await create(owner=data["user"], model_name=common.BENCH_MODEL)).id) for _ in range(CHATS_PER_SESSION)]
        for _ in range(args.sessions)
    ]
    _key, secret = await sync_to_async(api_key_create)(user=data["user"], name="soak")
    stats = Stats()
    memory: list[tuple[float, float]] = []
    stop_at = time.monotonic() + args.minutes * 60
    await asyncio.gather(
        *(_session(i, platform.url, data["session_key"], chats[i], stop_at, stats, args.engine == "real") for i in range(args.sessions)),
        _api_trickle(platform.url, secret, stop_at, stats),
        _memory(platform.process.pid, stop_at, memory),
    )
    return stats, memory


def _report(args: argparse.Namespace, stats: Stats, memory: list[tuple[float, float]]) -> None:
    from django.db.models import Sum

    from accounts.models import UsageRecord
    from chat.models import Message

    stored = dict(Message.objects.filter(pk__in=list(stats.streamed)).values_list("pk", "content"))
    mismatched = sum(1 for pk, text in stats.streamed.items() if stored.get(pk) != text)
    delays = sorted(stats.delays)
    warm = [rss for t, rss in memory if t >= min(60.0, args.minutes * 60 / 5)]
    print(f"Machine: {common.machine()}")
    if args.engine == "real":
        print(f"{args.sessions} sessions for {args.minutes:g} min, {args.tokens} tokens per answer (the real embedded engine, bundled model)")
    else:
        print(f"{args.sessions} sessions for {args.minutes:g} min, {args.tokens} tokens per answer at {args.rate:g} tokens/s (fixed-rate stand-in engine)")
    print(f"answers finished: {stats.answers}, API calls: {stats.api_calls} ({stats.api_errors} not 200)")
    print(f"deltas lost, doubled or out of order: {stats.bad_deltas}; answers stored differently from streamed: {mismatched}")
    print(f"errors: {len(stats.errors)} {stats.errors[:3]}")
    if delays:
        what = "gap between deltas" if args.engine == "real" else "token delay engine -> browser"
        print(f"{what}: p50 {statistics.median(delays) * 1000:.1f} ms, "
              f"p99 {delays[int(len(delays) * 0.99) - 1] * 1000:.1f} ms ({len(delays)} samples)")
    first = sorted(stats.first_deltas)
    if first:
        print(f"send to first delta: p50 {statistics.median(first) * 1000:.0f} ms, "
              f"p99 {first[max(0, int(len(first) * 0.99) - 1)] * 1000:.0f} ms ({len(first)} answers)")
    tokens = sum(len(text) for text in stats.streamed.values())
    print(f"characters streamed: {tokens}")
    generated = UsageRecord.objects.aggregate(total=Sum("completion_tokens"))["total"] or 0
    print(f"tokens generated (usage records, answers and API calls): {generated}, "
          f"{generated / (args.minutes * 60):.1f} tokens/s, {stats.answers / args.minutes:.1f} answers/min")
    if memory:
        every = max(1, len(memory) // 12)
        print("web process RSS over time: " + ", ".join(f"{t:.0f} s {rss:.0f} MiB" for t, rss in memory[::every]))
    if warm:
        growth = (warm[-1] - warm[0]) / warm[0] * 100
        print(f"web process RSS after warm-up {warm[0]:.0f} MiB, at the end {warm[-1]:.0f} MiB ({growth:+.1f} %), peak {max(warm):.0f} MiB")


if __name__ == "__main__":
    main()
