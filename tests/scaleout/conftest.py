"""The scale-out shape (``platform.cluster``): two daphne nodes behind HAProxy, one Celery
worker, over the test database and Redis. All real processes; the nodes run the embedded
engine with the bundled model, each its own copy (production nodes would share vLLM)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect
from websockets.typing import Origin

from platform.cluster import Cluster, Node
from tests.conftest import _test_database_url
from tests.models_admin.helpers import SMOLLM_BYTES, ModelServer, start_model_server

SMOL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _services_configured() -> bool:
    return django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql") and bool(django_settings.REDIS_URL)


@pytest.fixture(scope="module")
def hub() -> Iterator[ModelServer]:
    # Throttled so a pull takes a couple of seconds and reports progress on the way.
    server = start_model_server(bytes_per_second=40_000_000)
    server.files[SMOL_FILE] = SMOLLM_BYTES
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster(django_db_setup: None, django_db_blocker: Any, hub: ModelServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not _services_configured():
        # Several processes share state only through PostgreSQL and Redis. CI sets
        # REQUIRE_SERVICES so that this can never pass there by skipping.
        message = "the scale-out shape needs PostgreSQL and Redis: set DATABASE_URL and REDIS_URL"
        if os.environ.get("REQUIRE_SERVICES"):
            pytest.fail(message)
        pytest.skip(message)
    with django_db_blocker.unblock():
        database_url = _test_database_url()
    models_dir = tmp_path_factory.mktemp("cluster-models")
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": django_settings.REDIS_URL,
        "CELERY_QUEUE": f"test-cluster-{uuid.uuid4().hex[:8]}",  # nobody else's worker takes these
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CHAT_AUTO_TITLE": "false",
        "MODELS_DIR": str(models_dir),
        "PULL_ALLOW_HOSTS": hub.host,
        "HF_ENDPOINT": hub.origin,
        # Long answers unless a test caps the model (LLMModel.max_tokens is the ceiling).
        "DEFAULT_MAX_TOKENS": "1500",
        # Short leases, so that a killed node's answers are finalised within seconds here.
        "GENERATION_CHECKPOINT_SECONDS": "0.5",
        "GENERATION_LEASE_SECONDS": "8",
        "GENERATION_SWEEP_SECONDS": "1",
    }
    cluster = Cluster(env=env, log_dir=tmp_path_factory.mktemp("cluster"))
    cluster.start()
    yield cluster
    cluster.stop()


def session_cookie(user: Any) -> str:
    browser = Client()
    browser.force_login(user)
    return browser.cookies["sessionid"].value


def socket(node: Node | Cluster, path: str, cookie: str) -> ClientConnection:
    url = node.url.replace("http://", "ws://") + path
    return ws_connect(url, origin=Origin(node.url), proxy=None, compression=None, open_timeout=10,
                      additional_headers={"Cookie": f"sessionid={cookie}"})


def receive(connection: ClientConnection, timeout: float = 60) -> dict[str, Any]:
    event = json.loads(connection.recv(timeout=timeout))
    assert isinstance(event, dict)
    return event


def receive_until(connection: ClientConnection, *kinds: str, timeout: float = 90) -> list[dict[str, Any]]:
    """Events up to and including the first of one of ``kinds``."""
    events: list[dict[str, Any]] = []
    while not events or events[-1]["type"] not in kinds:
        events.append(receive(connection, timeout))
    return events


def models_dir_of(cluster: Cluster) -> Path:
    return Path(cluster.env["MODELS_DIR"])
