"""The chat page's own cost in Chromium: opening a 1,000-message conversation, scrolling it,
and a 20,000-token answer streaming in, measured on the page's main thread.

    python -m bench.browser_main_thread [--tokens 20000] [--rate 400] [--messages 1000] [--out FILE]

The platform is the real one (daphne, the views, the socket, the generation job) over a
throwaway SQLite database. The model is **a scripted stand-in**: an OpenAI-compatible server on
loopback, registered as a ``vllm`` backend model, that sends a fixed markdown answer (headings,
paragraphs, lists, code blocks, tables) at a fixed rate of ``--rate`` tokens a second whatever
the prompt. No model runs, so the figures isolate what the page itself costs: every millisecond
measured is the browser's own work on what the socket delivers.

Measured through the Chrome DevTools Protocol (``Performance.getMetrics``: TaskDuration,
ScriptDuration, LayoutDuration + RecalcStyleDuration, deltas over each phase) and a
``longtask`` PerformanceObserver in the page (the longest task; tasks under 50 ms are not
reported by the browser, so 0 means none reached 50 ms):

- open: from navigation to every message in the DOM, and the main thread's busy time until
  it is quiet again;
- scroll: from the bottom to the top of the conversation, 600 px per animation frame;
- stream: from the first streamed token to the finished answer, busy time as a share of the
  wall time (overall and over its last 10 s) and the longest task.

Chromium is Debian's (/usr/bin/chromium, or CHROMIUM_PATH), headless, through Playwright.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from . import common

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
MODEL = "scripted:latest"
QUIET_WINDOW_S = 0.5

# Run in the page before any of its scripts: every long task (>= 50 ms) is kept.
LONG_TASKS = """
window.__longTasks = [];
try {
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) window.__longTasks.push([entry.startTime, entry.duration]);
  }).observe({ type: "longtask", buffered: true });
} catch (error) { /* no longtask support: reported as 0 */ }
"""

SCROLL_TO_TOP = """(step) => new Promise((resolve) => {
  const box = document.getElementById("chat-scroll");
  const frames = [];
  let last = performance.now();
  function frame(now) {
    frames.push(now - last);
    last = now;
    if (box.scrollTop <= 0) { resolve(frames.slice(1)); return; }
    box.scrollTop = Math.max(0, box.scrollTop - step);
    requestAnimationFrame(frame);
  }
  box.scrollTop = box.scrollHeight;
  requestAnimationFrame((now) => { last = now; requestAnimationFrame(frame); });
})"""


# ---- The scripted engine -------------------------------------------------------------------


def scripted_answer(tokens: int) -> list[str]:
    """A long markdown answer cut into ``tokens`` word-sized pieces, the same every run."""
    words = (
        "the keeper climbs the stairs at dusk and trims the wick while the sea below keeps its own "
        "slow time against the rocks and the gulls go quiet one by one"
    ).split()
    pieces: list[str] = []
    section = 0
    while len(pieces) < tokens:
        section += 1
        text = [f"## Part {section}: the lamp\n\n"]
        for paragraph in range(2):
            sentence = " ".join(words[(section + paragraph + i) % len(words)] for i in range(40))
            text.append(f"This is **paragraph {paragraph + 1}** of part {section}: {sentence}, with `inline code`. "
                        f"And a second sentence ends here. {sentence.capitalize()}.\n\n")
        text.append("".join(f"- item {i} of the list: {words[i]} {words[i + 1]} *{words[i + 2]}*\n" for i in range(5)))
        text.append("\n")
        code = "".join(f"    total += lamp_{i}(wick, oil={i})\n" for i in range(8))
        text.append(f"```python\ndef shift_{section}(wick, oil):\n    total = 0\n{code}    return total\n```\n\n")
        if section % 2 == 0:
            text.append("| hour | oil | note |\n|---|---|---|\n")
            text.append("".join(f"| {h}:00 | {h * 3} l | {words[h]} |\n" for h in range(1, 5)))
            text.append("\n")
        pieces.extend(re.findall(r"\S+\s*|\s+", "".join(text)))
    return pieces[:tokens]


class ScriptedEngine:
    """An OpenAI-compatible server on loopback that streams ``answer`` at ``rate`` tokens/s."""

    def __init__(self, answer: list[str], rate: float) -> None:
        self.answer = answer
        self.rate = rate
        engine = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _json(self, payload: dict[str, Any]) -> None:
                body = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._json({"object": "list", "data": [{"id": "scripted", "object": "model", "max_model_len": 65536}]})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = json.loads(self.rfile.read(length) or b"{}")
                if self.path == "/tokenize":
                    self._json({"count": max(1, len(str(request.get("prompt", ""))) // 4)})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    engine.stream(self.wfile)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # Stop: the platform closed the request

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stream(self, out: Any) -> None:
        def chunk(payload: dict[str, Any]) -> bytes:
            return b"data: " + json.dumps(payload).encode() + b"\n\n"

        started = time.perf_counter()
        sent = 0
        total = len(self.answer)
        while sent < total:
            # Every token that is due by now, in one write: a fixed rate, not a fixed sleep.
            due = min(total, int((time.perf_counter() - started) * self.rate) + 1)
            out.write(b"".join(
                chunk({"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
                for piece in self.answer[sent:due]
            ))
            out.flush()
            sent = due
            time.sleep(0.01)
        out.write(chunk({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
        out.write(chunk({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": total}}))
        out.write(b"data: [DONE]\n\n")
        out.flush()

    def stop(self) -> None:
        self.server.shutdown()


# ---- Data -----------------------------------------------------------------------------------


def long_answer(n: int) -> str:
    """A typical stored answer: a paragraph, a short list, every fifth one a code block."""
    text = (f"Answer {n}. The lamp is lit at **dusk** and put out at dawn; the keeper writes the "
            f"hours in the log and checks the `oil` twice a night.\n\n- wick trimmed\n- glass cleaned\n- log written\n")
    if n % 5 == 0:
        text += f"\n```python\ndef check_{n}(lamp):\n    return lamp.oil > {n % 7} and lamp.lit\n```\n"
    return text


def prepare_data(messages: int, tokens: int) -> dict[str, Any]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import transaction

    from chat.models import Conversation, Message, Role
    from models_admin.models import LLMModel

    LLMModel.objects.update_or_create(
        name="scripted",
        tag="latest",
        defaults={"backend": "vllm", "upstream_name": "scripted", "context_length": 65536,
                  "capabilities": ["completion"], "max_tokens": tokens + 100, "is_default": True},
    )
    user, _ = get_user_model().objects.get_or_create(username="bench-browser")
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()
    with transaction.atomic():
        conversation = Conversation.objects.create(owner=user, title=f"{messages} messages")
        parent = None
        for n in range(messages):
            user_turn = n % 2 == 0
            parent = Message.objects.create(
                conversation=conversation, parent=parent, author=user if user_turn else None,
                role=Role.USER if user_turn else Role.ASSISTANT, model_name="" if user_turn else MODEL,
                content=f"Question {n}: how is the lamp looked after?" if user_turn else long_answer(n),
            )
        Conversation.objects.filter(pk=conversation.pk).update(current_leaf=parent)
    return {"session_key": session.session_key, "cookie": settings.SESSION_COOKIE_NAME, "long": str(conversation.id)}


# ---- Measuring --------------------------------------------------------------------------------


class MainThread:
    """Cumulative main-thread metrics of one page, through CDP."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("Performance.enable", {"timeDomain": "timeTicks"})

    def sample(self) -> dict[str, float]:
        metrics = {m["name"]: m["value"] for m in self.cdp.send("Performance.getMetrics")["metrics"]}
        return {
            "wall": time.perf_counter(),
            "task": metrics.get("TaskDuration", 0.0),
            "script": metrics.get("ScriptDuration", 0.0),
            "layout": metrics.get("LayoutDuration", 0.0) + metrics.get("RecalcStyleDuration", 0.0),
        }

    def page_now(self) -> float:
        return float(self.page.evaluate("performance.now()"))

    def longest_task(self, since: float, until: float | None = None) -> float:
        tasks = self.page.evaluate("window.__longTasks || []")
        durations = [d for start, d in tasks if start + d >= since and (until is None or start <= until)]
        return max(durations, default=0.0) * 1.0

    def long_tasks(self, since: float, until: float | None = None) -> int:
        tasks = self.page.evaluate("window.__longTasks || []")
        return sum(1 for start, d in tasks if start + d >= since and (until is None or start <= until))

    def wait_quiet(self, timeout: float = 60.0) -> dict[str, float]:
        """Sample until the main thread was busy under 10 % for half a second."""
        deadline = time.perf_counter() + timeout
        before = self.sample()
        while time.perf_counter() < deadline:
            time.sleep(QUIET_WINDOW_S)
            after = self.sample()
            if (after["task"] - before["task"]) < 0.1 * (after["wall"] - before["wall"]):
                return before
            before = after
        return before


def delta(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {key: b[key] - a[key] for key in a}


def measure_open(thread: MainThread, url: str, messages: int) -> dict[str, Any]:
    page = thread.page
    base = thread.sample()
    started = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.wait_for_function(
        "n => { if (!window.__readyAt && document.querySelectorAll('#messages > .message').length >= n)"
        " window.__readyAt = performance.now(); return Boolean(window.__readyAt); }",
        arg=messages, polling="raf", timeout=120_000,
    )
    ready_ms = float(page.evaluate("window.__readyAt"))
    wall_ready = time.perf_counter() - started
    quiet = thread.wait_quiet()
    if quiet["task"] < base["task"]:
        # The navigation changed renderer process: its counters started again from zero.
        base = {**base, "task": 0.0, "script": 0.0, "layout": 0.0}
    spent = delta(base, quiet)
    return {
        "ready_ms": ready_ms,
        "wall_ready_s": wall_ready,
        "busy_s": spent["task"],
        "script_s": spent["script"],
        "layout_s": spent["layout"],
        "longest_ms": thread.longest_task(0.0),
        "long_tasks": thread.long_tasks(0.0),
    }


def measure_scroll(thread: MainThread) -> dict[str, Any]:
    before = thread.sample()
    since = thread.page_now()
    frames: list[float] = thread.page.evaluate(SCROLL_TO_TOP, 600)
    after = thread.sample()
    spent = delta(before, after)
    ordered = sorted(frames)
    return {
        "frames": len(frames),
        "wall_s": spent["wall"],
        "busy_s": spent["task"],
        "mean_frame_ms": statistics.fmean(frames) if frames else 0.0,
        "p95_frame_ms": ordered[int(0.95 * (len(ordered) - 1))] if ordered else 0.0,
        "max_frame_ms": ordered[-1] if ordered else 0.0,
        "slow_frames": sum(1 for f in frames if f > 50),
        "longest_ms": thread.longest_task(since),
    }


def measure_stream(thread: MainThread, base_url: str, tokens: int, rate: float) -> dict[str, Any]:
    page = thread.page
    page.goto(base_url + "/")
    page.wait_for_selector("#composer-input")
    page.fill("#composer-input", "Tell me everything about keeping a lighthouse.")
    page.keyboard.press("Enter")
    answer = page.locator('.message[data-role="assistant"]').last
    # The clock starts with the first token on screen.
    page.wait_for_function(
        "() => { const a = [...document.querySelectorAll('.message[data-role=\"assistant\"]')].pop();"
        " return a && a.querySelector('.message-body').textContent.length > 0; }",
        polling="raf", timeout=60_000,
    )
    since = thread.page_now()
    samples = [thread.sample()]
    deadline = time.perf_counter() + tokens / rate * 4 + 120
    while answer.get_attribute("data-status") == "streaming":
        if time.perf_counter() > deadline:
            raise SystemExit("the answer did not finish in time")
        time.sleep(1.0)
        samples.append(thread.sample())
    until = thread.page_now()
    # What the page does once it knows the answer is done (the final render) counts too.
    samples.append(thread.wait_quiet())
    last = samples[-1]
    tail = next((s for s in reversed(samples) if last["wall"] - s["wall"] >= 10), samples[0])
    spent = delta(samples[0], last)
    spent_tail = delta(tail, last)
    shown = len(answer.locator(".message-body").inner_text())
    return {
        "wall_s": spent["wall"],
        "busy_s": spent["task"],
        "script_s": spent["script"],
        "layout_s": spent["layout"],
        "busy_share": spent["task"] / spent["wall"],
        "tail_busy_share": spent_tail["task"] / spent_tail["wall"] if spent_tail["wall"] else 0.0,
        "longest_ms": thread.longest_task(since),
        "long_tasks": thread.long_tasks(since),
        "stream_ms": until - since,
        "chars_shown": shown,
    }


def report(args: argparse.Namespace, version: str, opened: dict[str, Any], scrolled: dict[str, Any],
           streamed: dict[str, Any]) -> str:
    lines = [
        f"Machine: {common.machine()}; headless Chromium {version}",
        f"Scripted stand-in engine (no model): {args.tokens} tokens at {args.rate:g} tokens/s; "
        f"a {args.messages}-message conversation",
        "",
        "| phase | figure |",
        "|---|---|",
        f"| open {args.messages} messages | all in the DOM at {opened['ready_ms']:.0f} ms after navigation; "
        f"main thread busy {opened['busy_s'] * 1000:.0f} ms until quiet (script {opened['script_s'] * 1000:.0f} ms, "
        f"style+layout {opened['layout_s'] * 1000:.0f} ms); longest task {opened['longest_ms']:.0f} ms, "
        f"{opened['long_tasks']} tasks >= 50 ms |",
        f"| scroll bottom to top | {scrolled['frames']} frames in {scrolled['wall_s']:.2f} s: mean "
        f"{scrolled['mean_frame_ms']:.1f} ms, p95 {scrolled['p95_frame_ms']:.1f} ms, max "
        f"{scrolled['max_frame_ms']:.1f} ms, {scrolled['slow_frames']} frames > 50 ms; busy "
        f"{scrolled['busy_s'] * 1000:.0f} ms; longest task {scrolled['longest_ms']:.0f} ms |",
        f"| stream {args.tokens} tokens | {streamed['wall_s']:.1f} s: main thread busy {streamed['busy_s']:.2f} s "
        f"= {streamed['busy_share'] * 100:.1f} % (last 10 s: {streamed['tail_busy_share'] * 100:.1f} %), script "
        f"{streamed['script_s']:.2f} s, style+layout {streamed['layout_s']:.2f} s; longest task "
        f"{streamed['longest_ms']:.0f} ms, {streamed['long_tasks']} tasks >= 50 ms; {streamed['chars_shown']} "
        "characters shown |",
    ]
    return "\n".join(lines)


def browser_args() -> list[str]:
    return ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"]


def run(args: argparse.Namespace) -> str:
    data_dir = common.temp_data_dir()
    # A throwaway database and the in-memory channel layer: nothing shared is touched.
    os.environ["DATABASE_URL"] = f"sqlite:///{data_dir / 'bench.sqlite3'}"
    os.environ.pop("REDIS_URL", None)
    os.environ["DATA_DIR"] = str(data_dir)
    os.environ.update({
        "CHAT_AUTO_TITLE": "false",
        "MAX_TOKENS_CEILING": str(args.tokens + 100),
        "MAX_MESSAGE_CHARS": "1000000",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
    })
    engine = ScriptedEngine(scripted_answer(args.tokens), args.rate)
    common.setup_django(data_dir)
    data = prepare_data(args.messages, args.tokens)
    platform = common.start_platform(data_dir, vllm_url=engine.url)
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=browser_args())
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            context.add_cookies([{"name": data["cookie"], "value": data["session_key"], "url": platform.url}])
            context.add_init_script(LONG_TASKS)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            # A first visit warms the caches (static files, compiled scripts) for both runs alike.
            page.goto(platform.url + "/")
            page.wait_for_selector("#composer-input")
            thread = MainThread(page)
            opened = measure_open(thread, f"{platform.url}/c/{data['long']}/", args.messages)
            scrolled = measure_scroll(thread)
            streamed = measure_stream(thread, platform.url, args.tokens, args.rate)
            version = browser.version
            browser.close()
        if errors:
            raise SystemExit(f"the page raised: {errors}")
    finally:
        platform.stop()
        engine.stop()
    return report(args, version, opened, scrolled, streamed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=20000)
    parser.add_argument("--rate", type=float, default=400.0, help="tokens a second from the scripted engine")
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--out", type=Path, help="also write the report here")
    args = parser.parse_args()
    if not os.path.exists(CHROMIUM):
        raise SystemExit(f"Chromium is missing at {CHROMIUM}: run `make browser`")
    text = run(args)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
