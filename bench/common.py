"""Shared harness for the benchmarks: a platform server, an identical direct engine, stats.

The platform under test is the real one (daphne, the embedded llama.cpp engine inside it,
the database named by DATABASE_URL or a throwaway SQLite file). The baseline is a second
llama.cpp server started here with the same parameters, called directly over HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH_MODEL = "bench:latest"
PROMPT = "Explain in a few paragraphs how a lighthouse works."


def setup_django(data_dir: Path) -> None:
    os.environ.setdefault("DATA_DIR", str(data_dir))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("collectstatic", "--noinput", verbosity=0)


def prepare_data(max_tokens: int, backend: str = "embedded") -> dict[str, Any]:
    """A bench user, a session for the socket, and a greedy copy of the bundled model.

    ``backend="vllm"``: the platform reaches the model through its vLLM (OpenAI-compatible)
    backend, pointed at the separate baseline engine, so the platform's own cost is measured
    apart from sharing the CPU with an engine inside its process."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    from models_admin.models import LLMModel
    from models_admin.services.registry import bundled_model_install

    base = bundled_model_install()
    # Greedy decoding with a fixed seed: both paths produce the same tokens.
    LLMModel.objects.update_or_create(
        name="bench",
        tag="latest",
        defaults={
            "backend": backend,
            "upstream_name": "bench" if backend == "vllm" else "",
            "file_path": base.file_path if backend == "embedded" else "",
            "context_length": base.context_length,
            "capabilities": base.capabilities,
            "parameters": {"temperature": 0, "seed": 7},
            "max_tokens": max_tokens,
        },
    )
    User = get_user_model()
    user, _ = User.objects.get_or_create(username="bench-user")
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()
    return {
        "user": user,
        "session_key": session.session_key,
        "model_path": base.file_path,
        "parallel": settings.EMBEDDED_PARALLEL,
        "context": min(base.context_length, settings.EMBEDDED_CONTEXT),
        "threads": settings.EMBEDDED_THREADS or (os.cpu_count() or 1),
        "batch": settings.EMBEDDED_BATCH,
        "backend": backend,
    }


def prepare(description: str | None) -> tuple[argparse.Namespace, Path, dict[str, Any]]:
    """The benchmarks' shared command line, a throwaway data folder and the bench data."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=0, help="requests per client (default: enough samples)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs per setting; medians are reported")
    parser.add_argument(
        "--backend", choices=["embedded", "vllm"], default="embedded",
        help="embedded: the engine inside the web process; vllm: the platform's vLLM backend pointed at the "
        "separate baseline engine",
    )
    args = parser.parse_args()
    data_dir = temp_data_dir()
    setup_django(data_dir)
    return args, data_dir, prepare_data(args.max_tokens, args.backend)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Platform:
    url: str
    process: subprocess.Popen[bytes]
    start_seconds: float
    idle_rss_mib: float

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_platform(log_dir: Path, *, vllm_url: str = "", extra_env: dict[str, str] | None = None) -> Platform:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        # One bench user runs every stream: the per-user limit would refuse c>4, and the
        # bench measures the platform's cost, not its limits.
        "MAX_CONCURRENT_GENERATIONS_PER_USER": "100000",
    }
    if vllm_url:
        env["VLLM_URL"] = vllm_url
    env.update(extra_env or {})
    log = (log_dir / "daphne.log").open("wb")
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "platform.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(url + "/", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"the platform did not start; see {log_dir / 'daphne.log'}")
        time.sleep(0.02)
    start_seconds = time.perf_counter() - started
    time.sleep(1.0)  # let start-up garbage settle before reading memory
    return Platform(url=url, process=process, start_seconds=start_seconds, idle_rss_mib=rss_mib(process.pid))


def start_direct_engine(data: dict[str, Any]) -> Any:
    """The baseline: llama.cpp with the platform's own engine parameters, nothing in front."""
    import xllamacpp

    from inference.engines.embedded import wait_until_serving

    params = xllamacpp.CommonParams()
    params.model.path = data["model_path"]
    params.port = 0
    params.n_parallel = data["parallel"]
    params.n_ctx = data["context"] * data["parallel"]
    params.cont_batching = True
    params.n_threads_http = max(64, data["parallel"] * 8)
    params.cpuparams.n_threads = data["threads"]
    params.cpuparams_batch.n_threads = data["threads"]
    params.n_batch = data["batch"]
    params.n_ubatch = min(params.n_ubatch, data["batch"])
    params.endpoint_slots = True  # for the wait below
    server = xllamacpp.Server(params)
    wait_until_serving(server)
    return server


@dataclass
class Sample:
    ttft: float
    tokens: int
    seconds: float


@dataclass
class Result:
    label: str
    concurrency: int
    samples: list[Sample] = field(default_factory=list)
    wall: float = 0.0

    def ttft_ms(self, q: float) -> float:
        values = sorted(s.ttft for s in self.samples)
        if not values:
            return float("nan")
        index = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
        return values[index] * 1000

    @property
    def tokens_per_second(self) -> float:
        return sum(s.tokens for s in self.samples) / self.wall if self.wall else 0.0


async def run_load(
    label: str, concurrency: int, requests_per_client: int, one: Callable[[int], Awaitable[Sample]]
) -> Result:
    result = Result(label, concurrency)

    async def client(index: int) -> None:
        for _ in range(requests_per_client):
            result.samples.append(await one(index))

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(concurrency)))
    result.wall = time.perf_counter() - started
    return result


async def direct_chat(client: httpx.AsyncClient, url: str, max_tokens: int) -> Sample:
    body = {
        "model": BENCH_MODEL,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "seed": 7,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    ttft = None
    tokens = 0
    async with client.stream("POST", url + "/v1/chat/completions", json=body) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[5:])
            if ttft is None and any((c.get("delta") or {}).get("content") for c in chunk.get("choices", [])):
                ttft = time.perf_counter() - started
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    return Sample(ttft=ttft or 0.0, tokens=tokens, seconds=time.perf_counter() - started)


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def table(rows: Sequence[tuple[Sequence[Result], Sequence[Result]]]) -> str:
    """Each row: one path's runs and the direct runs interleaved with them; every figure is
    the median over the runs (each overhead and ratio is taken within its own run first)."""
    lines = [
        "| path | c | runs × n | TTFT p50 ms (direct) | TTFT p50 overhead ms | TTFT p99 ms (direct) | TTFT p99 overhead ms "
        "| tok/s (direct) | tok/s ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for runs, directs in rows:
        first = runs[0]
        pairs = list(zip(runs, directs, strict=True))
        lines.append(
            f"| {first.label} | {first.concurrency} | {len(runs)} × {len(first.samples)} "
            f"| {_median([r.ttft_ms(0.5) for r in runs]):.1f} ({_median([d.ttft_ms(0.5) for d in directs]):.1f}) "
            f"| {_median([r.ttft_ms(0.5) - d.ttft_ms(0.5) for r, d in pairs]):+.1f} "
            f"| {_median([r.ttft_ms(0.99) for r in runs]):.1f} ({_median([d.ttft_ms(0.99) for d in directs]):.1f}) "
            f"| {_median([r.ttft_ms(0.99) - d.ttft_ms(0.99) for r, d in pairs]):+.1f} "
            f"| {_median([r.tokens_per_second for r in runs]):.0f} ({_median([d.tokens_per_second for d in directs]):.0f}) "
            f"| {_median([r.tokens_per_second / d.tokens_per_second for r, d in pairs]):.3f} |"
        )
    return "\n".join(lines)


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return f"{os.cpu_count()} cores ({cpu}), {int(mem) / 1024 / 1024:.0f} GiB RAM, Python {sys.version.split()[0]}"


def temp_data_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="platform-bench-"))
