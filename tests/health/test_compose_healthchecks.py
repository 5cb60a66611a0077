"""Every health check in docker-compose.yml, run for real.

Each ``healthcheck.test`` is read from the file and run as docker would run it, with only
the address it talks to rewritten: the web check against the real platform (daphne) started
with production-like settings, pg_isready and redis-cli against the PostgreSQL and Redis on
this machine, the worker check against a real Celery worker, the vLLM check against a
stand-in server. Each is also shown to fail when what it checks is not there.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from models_admin.models import LLMModel
from tests.conftest import ROOT, LiveServer, _test_database_url, free_port, start_live_server

COMPOSE = ROOT / "docker-compose.yml"
# `python` in the checks is the image's Python; here it is this virtual environment's.
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def services() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"])


def _unescape(value: str) -> str:
    """The string after compose's interpolation: ``$$`` is a literal ``$``; the checks use no
    ``${VAR}`` (it would be the host's value, read when compose starts, not the container's)."""
    assert "$" not in value.replace("$$", ""), f"compose would interpolate {value!r}"
    return value.replace("$$", "$")


def check_argv(service: str) -> list[str]:
    """What docker executes for ``service``'s health check."""
    test = services()[service]["healthcheck"]["test"]
    if isinstance(test, str):
        return ["/bin/sh", "-c", _unescape(test)]
    kind, *args = test
    if kind == "CMD":
        return [_unescape(arg) for arg in args]
    assert kind == "CMD-SHELL" and len(args) == 1, test
    return ["/bin/sh", "-c", _unescape(args[0])]


def run(argv: list[str], *, timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, env=env or ENV, capture_output=True, text=True, timeout=timeout)


def retarget(argv: list[str], old: str, new: str) -> list[str]:
    changed = [arg.replace(old, new) for arg in argv]
    assert changed != argv, f"{old!r} not in {argv!r}"
    return changed


def add_options(argv: list[str], program: str, options: str) -> list[str]:
    """Put ``options`` right after ``program`` in the check (a shell line or an argv)."""
    pattern = re.compile(rf"(^|[\s/]){re.escape(program)}(?=\s|$)")
    if argv[0] == "/bin/sh":
        line, count = pattern.subn(lambda m: f"{m.group(0)} {options}", argv[2], count=1)
        assert count == 1, argv
        return [*argv[:2], line]
    position = argv.index(program)
    return [*argv[: position + 1], *shlex.split(options), *argv[position + 1 :]]


def timeout_of(service: str) -> float:
    raw = str(services()[service]["healthcheck"]["timeout"])
    assert raw.endswith("s"), raw
    return float(raw[:-1])


def test_every_service_has_a_health_check() -> None:
    for name, service in services().items():
        check = service.get("healthcheck")
        assert check and check.get("test"), f"{name} has no health check"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert {"interval", "timeout", "retries"} <= set(check), name


def test_the_platform_images_checks_use_only_what_the_image_has() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert dockerfile.startswith("#") and "FROM python:" in dockerfile
    assert check_argv("web")[0] == "python"
    assert check_argv("worker")[2].startswith("python -m celery ")
    # vLLM's image is a Python one; curl is not promised there.
    assert check_argv("vllm")[0] == "python3"


# --- web ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def production_like(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The platform as in production: a real host name in ALLOWED_HOSTS and HTTPS redirects,
    which the check (plain HTTP to 127.0.0.1) must get past."""
    env = {"ALLOWED_HOSTS": "chat.example.com", "SECURE_SSL_REDIRECT": "true"}
    with start_live_server(django_db_blocker, tmp_path_factory.mktemp("production-like"), env) as server:
        yield server


@pytest.mark.django_db(transaction=True)
def test_web_check_passes_when_the_platform_is_ready(production_like: LiveServer, smollm: LLMModel) -> None:
    argv = retarget(check_argv("web"), "http://127.0.0.1:8000", production_like.url)
    result = run(argv, timeout=timeout_of("web"))
    assert result.returncode == 0, result.stderr
    # What the old check asked for is refused from there now (no key, and not an allowed Host).
    old = run(["curl", "-fsS", production_like.url + "/api/version"], timeout=5)
    assert old.returncode != 0


@pytest.mark.django_db(transaction=True)
def test_web_check_fails_with_the_reason_when_not_ready(production_like: LiveServer, unreachable_default: LLMModel) -> None:
    argv = retarget(check_argv("web"), "http://127.0.0.1:8000", production_like.url)
    result = run(argv, timeout=timeout_of("web"))
    assert result.returncode != 0
    assert '"engine"' in result.stderr and "does not answer" in result.stderr  # in `docker inspect`


def test_web_check_fails_when_nothing_listens() -> None:
    argv = retarget(check_argv("web"), "http://127.0.0.1:8000", f"http://127.0.0.1:{free_port()}")
    assert run(argv, timeout=timeout_of("web")).returncode != 0


# --- postgres, redis: their own tools, against the servers on this machine --------------------


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


needs_pg = pytest.mark.skipif(
    shutil.which("pg_isready") is None or not _listening(5432), reason="needs pg_isready and PostgreSQL on 127.0.0.1:5432"
)
needs_redis = pytest.mark.skipif(
    shutil.which("redis-cli") is None or not _listening(6379), reason="needs redis-cli and Redis on 127.0.0.1:6379"
)


@needs_pg
def test_postgres_check() -> None:
    argv = check_argv("postgres")
    assert "-h 127.0.0.1" in argv[2]  # TCP, so the entrypoint's socket-only init server does not count
    assert run(add_options(argv, "pg_isready", "-p 5432"), timeout=timeout_of("postgres")).returncode == 0
    down = run(add_options(argv, "pg_isready", f"-p {free_port()}"), timeout=timeout_of("postgres"))
    assert down.returncode != 0


class _LoadingRedis(threading.Thread):
    """Answers every command as Redis does while it loads its dump after a restart."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(1024)
                conn.sendall(b"-LOADING Redis is loading the dataset in memory\r\n")


@needs_redis
def test_redis_check() -> None:
    argv = check_argv("redis")
    assert run(add_options(argv, "redis-cli", "-p 6379"), timeout=timeout_of("redis")).returncode == 0
    assert run(add_options(argv, "redis-cli", f"-p {free_port()}"), timeout=timeout_of("redis")).returncode != 0
    loading = _LoadingRedis()
    loading.start()
    try:
        # `redis-cli ping` alone exits 0 here: the check must not call a loading Redis healthy.
        result = run(add_options(argv, "redis-cli", f"-p {loading.port}"), timeout=timeout_of("redis"))
        assert result.returncode != 0
    finally:
        loading.sock.close()


# --- worker: a real Celery worker, started with the compose service's command -----------------


def _worker_command(schedule: Path, node: str) -> list[str]:
    command = [_unescape(arg) for arg in services()["worker"]["command"]]
    # Its node name is Celery's default, celery@<hostname>: in a container, celery@$HOSTNAME.
    assert not {"-n", "--hostname"} & set(command)
    assert command[command.index("--schedule") + 1].startswith("/data/")
    command[command.index("--schedule") + 1] = str(schedule)
    # This machine's host name is shared with other test runs: name the node as the container's.
    return [*command, "--hostname", f"celery@{node}", "--concurrency=1"]


@needs_redis
@pytest.mark.django_db(transaction=True)
def test_worker_check(django_db_blocker: Any, tmp_path: Path) -> None:
    with django_db_blocker.unblock():
        database_url = _test_database_url()
    node = f"healthcheck-{uuid.uuid4().hex[:12]}"
    env = {
        **ENV,
        "DATABASE_URL": database_url,
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "CELERY_QUEUE": node,  # takes no one else's tasks, and its beat's go to itself
        "DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "platform.settings",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            _worker_command(tmp_path / "celerybeat-schedule", node), cwd=ROOT, env=env, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while " ready." not in log.read_text(errors="replace"):
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)
        argv = check_argv("worker")
        assert run(argv, env={**env, "HOSTNAME": node}, timeout=timeout_of("worker")).returncode == 0
        # Another container's name (or a worker that is gone) gets no answer.
        other = run(argv, env={**env, "HOSTNAME": f"{node}-other"}, timeout=timeout_of("worker"))
        assert other.returncode != 0
    finally:
        os.killpg(worker.pid, 15)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, 9)
            worker.wait(timeout=10)


# --- vllm: a stand-in for vLLM's /health -------------------------------------------------------


class _Health(BaseHTTPRequestHandler):
    status = 200

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/health" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_vllm_check() -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        argv = retarget(check_argv("vllm"), "http://127.0.0.1:8000", f"http://127.0.0.1:{httpd.server_address[1]}")
        assert run(argv, timeout=timeout_of("vllm")).returncode == 0
        _Health.status = 503  # vLLM's engine died
        assert run(argv, timeout=timeout_of("vllm")).returncode != 0
    finally:
        _Health.status = 200
        httpd.shutdown()
        httpd.server_close()
    closed = retarget(check_argv("vllm"), "http://127.0.0.1:8000", f"http://127.0.0.1:{free_port()}")
    assert run(closed, timeout=timeout_of("vllm")).returncode != 0
