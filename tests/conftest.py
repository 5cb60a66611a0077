"""Shared fixtures: named personas, the real bundled model, a live platform server.

Personas: ``alice`` and ``bob`` are ordinary users, ``charlie`` has no access to restricted
things, ``admin`` is staff. Tests run against whatever DATABASE_URL/REDIS_URL say (CI:
PostgreSQL and Redis) and always against the real embedded llama.cpp engine.
"""

from __future__ import annotations

import faulthandler
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser

from models_admin.models import LLMModel
from models_admin.services.registry import bundled_model_install

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery-staple"

# pytest-timeout (300 s) fails a test from a signal handler or a thread, both of which need
# the GIL; a native call that hangs while holding it (an engine load) stops both, and CI
# hung until its own limit. faulthandler's watchdog is a C thread: it prints every thread's
# stack and ends the run.
HARD_TIMEOUT_SECONDS = 420


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    faulthandler.dump_traceback_later(HARD_TIMEOUT_SECONDS, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def make_user(username: str, *, staff: bool = False) -> AbstractUser:
    User = get_user_model()
    if staff:
        return User.objects.create_superuser(username=username, password=PASSWORD)
    return User.objects.create_user(username=username, password=PASSWORD)


@pytest.fixture
def alice(db: None) -> AbstractUser:
    return make_user("alice")


@pytest.fixture
def bob(db: None) -> AbstractUser:
    return make_user("bob")


@pytest.fixture
def charlie(db: None) -> AbstractUser:
    return make_user("charlie")


@pytest.fixture
def admin_user(db: None) -> AbstractUser:
    return make_user("admin", staff=True)


@pytest.fixture
def smollm(db: None) -> LLMModel:
    """The real bundled SmolLM2 model, registered as the default."""
    return bundled_model_install()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _test_database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class LiveServer:
    def __init__(self, url: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.url = url
        self.process = process
        self.log = log

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def start_live_server(
    django_db_blocker: Any, log_dir: Path, extra_env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[LiveServer]:
    """Run the real platform (daphne + embedded engine) on a loopback port over the test
    database; ``extra_env`` configures it as an operator would. ``port``: one chosen in
    advance (the sign-in tests tell the OpenID provider the callback address first)."""
    with django_db_blocker.unblock():
        database_url = _test_database_url()
    port = port or free_port()
    log = log_dir / "daphne.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "platform.settings",
        "PYTHONUNBUFFERED": "1",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # Automatic titles would be one more generation after every first answer; the tests
        # that are about them switch them on.
        "CHAT_AUTO_TITLE": "false",
        **(extra_env or {}),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "platform.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(server.url + "/", timeout=1)
            break
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"the platform did not start:\n{server.logs()}") from None
            time.sleep(0.1)
    try:
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def live_platform(django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The real platform on a loopback port, over the test database.

    Tests that use it need ``transactional_db`` so their data is committed and visible.
    """
    with start_live_server(django_db_blocker, tmp_path_factory.mktemp("live")) as server:
        yield server


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashes() -> None:
    """Users made by the tests get cheap hashes (tests/hashers.py). Measured: two test files
    of personas took 46 s with real hashes and 12 s with these."""
    from django.conf import settings
    from django.contrib.auth import hashers

    settings.PASSWORD_HASHERS = ["tests.hashers.FastTestHasher", *settings.PASSWORD_HASHERS]
    hashers.get_hashers.cache_clear()
    hashers.get_hashers_by_algorithm.cache_clear()


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """Each test starts with an empty cache, as with its fresh database. Counters kept there are
    keyed by user id or address (quotas, the forged-header audit): ids repeat between runs on
    a new test database, so a count left in Redis by an earlier test or run would leak in."""
    from django.core.cache import cache

    backend: Any = getattr(cache, "_cache", None)
    if backend is not None and hasattr(backend, "get_client"):  # Redis: only this cache's keys,
        client = backend.get_client(write=True)  # not the Celery queues in the same database
        keys = list(client.scan_iter(match=cache.make_key("*"), count=1000))
        if keys:
            client.delete(*keys)
    else:
        cache.clear()


@pytest.fixture(autouse=True)
def _no_automatic_titles(settings: Any) -> None:
    # One more generation after every first answer would blur what each test counts
    # (usage records, queries); tests/chat/test_titles.py switches them on.
    settings.CHAT_AUTO_TITLE = False


@pytest.fixture(autouse=True)
def _static_manifest_not_needed(settings: Any) -> None:
    # Tests render templates without running collectstatic first.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
