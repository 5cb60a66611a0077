"""Real services a fault test can break on purpose.

``TcpProxy`` stands between the platform and PostgreSQL: ``cut()`` closes every connection
through it and refuses new ones, which is what clients see while the server is down (the
machine's PostgreSQL serves the rest of the test run, so it cannot be stopped itself).
``RedisServer`` is a real ``redis-server`` of the test's own, on a free port, that can be
killed and started again like a restarting Redis (it keeps nothing on disk).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from tests.conftest import free_port


def require_postgres_and_redis() -> None:
    """These faults need the production shape. CI sets REQUIRE_SERVICES, so that a test here
    can never pass there by skipping."""
    configured = django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql") and bool(django_settings.REDIS_URL)
    if not configured:
        message = "this fault needs PostgreSQL and Redis: set DATABASE_URL and REDIS_URL"
        if os.environ.get("REQUIRE_SERVICES"):
            pytest.fail(message)
        pytest.skip(message)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``, one pair of threads per connection."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._accepting: threading.Thread | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        listener.settimeout(0.2)
        self._listener = listener
        self._accepting = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._accepting.start()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _address = listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for side in (source, sink):
                with contextlib.suppress(OSError):
                    side.shutdown(socket.SHUT_RDWR)
                side.close()
                with self._lock:
                    self._open.discard(side)

    def cut(self) -> None:
        """The server is gone: open connections drop, new ones are refused."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._accepting is not None:
            self._accepting.join(timeout=2)
        with self._lock:
            sides = list(self._open)
            self._open.clear()
        for side in sides:
            with contextlib.suppress(OSError):
                side.shutdown(socket.SHUT_RDWR)
            side.close()

    def restore(self) -> None:
        self.start()

    def stop(self) -> None:
        self.cut()


class RedisServer:
    """A real redis-server on its own port, killed and started again on demand."""

    def __init__(self, log_dir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is needed (Debian: apt-get install redis-server)")
        self.binary = binary
        self.port = free_port()
        self.log = log_dir / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as probe:
                probe.sendall(b"PING\r\n")
                if probe.recv(16).startswith(b"+PONG"):
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start:\n{self.log.read_text(errors='replace')}")
            time.sleep(0.05)

    def kill(self) -> None:
        """A crash: everything in memory is gone, every client connection drops."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        self.kill()
