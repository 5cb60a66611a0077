"""A Celery worker killed in the middle of a pull: no half model is ever ready, and the pull
is taken over by the next worker, which resumes the download and finishes it.

Recovery does not rely on the broker redelivering the message (with Redis that takes the
visibility timeout, an hour; the filesystem broker of embedded mode never does): the new
worker re-queues pulls whose lease ran out when it starts (``pulls_recover``).
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser

from models_admin.models import LLMModel, Pull, PullStatus
from models_admin.services.files import pull_temp_path
from models_admin.services.pulls import pull_start
from tests.conftest import _test_database_url

from .helpers import SMOLLM_BYTES, SMOLLM_SHA256, ModelServer, start_worker, task_queue, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

LEASE_SECONDS = 2


def test_killed_worker_leaves_no_ready_model_and_the_next_worker_finishes_the_pull(
    admin_user: AbstractUser, models_dir: Path, model_server: ModelServer, settings: Any, tmp_path: Path
) -> None:
    model_server.files["big.gguf"] = SMOLLM_BYTES
    model_server.bytes_per_second = 20_000_000  # about five seconds for the whole file
    queue = f"test-crash-{uuid.uuid4().hex[:8]}"
    env = {
        "MODELS_DIR": str(models_dir),
        "PULL_ALLOW_HOSTS": model_server.host,
        "PULL_LEASE_SECONDS": str(LEASE_SECONDS),
    }
    database_url = _test_database_url()
    first = start_worker(database_url=database_url, queue=queue, log=tmp_path / "first.log", env=env)
    try:
        with task_queue(queue):
            pull = pull_start(actor=admin_user, name=model_server.url("big.gguf"), model_name="big:latest")
        wait_for(
            lambda: Pull.objects.get(pk=pull.pk).completed_bytes > 20_000_000,
            timeout=60,
            message=f"the first worker to download\n{first.logs()}",
        )
    finally:
        first.kill()

    # Mid-download: the row says running, the partial file is there, nothing is registered.
    pull.refresh_from_db()
    assert pull.status == PullStatus.RUNNING
    partial = pull_temp_path(pull)
    kept = partial.stat().st_size
    assert 0 < kept < len(SMOLLM_BYTES)
    assert not LLMModel.objects.filter(name="big").exists()
    assert not (models_dir / "blobs").exists() or not list((models_dir / "blobs").iterdir())
    downloads_before = len([s for s in model_server.seen if s.path == "/files/big.gguf"])

    wait_for(lambda: Pull.objects.get(pk=pull.pk).lease_until < _now(), timeout=LEASE_SECONDS + 5, message="lease expiry")
    second = start_worker(database_url=database_url, queue=queue, log=tmp_path / "second.log", env=env)
    try:
        wait_for(
            lambda: Pull.objects.get(pk=pull.pk).status != PullStatus.RUNNING,
            timeout=60,
            message=f"the second worker to finish\n{second.logs()}",
        )
    finally:
        second.stop()

    pull.refresh_from_db()
    assert pull.status == PullStatus.SUCCEEDED, pull.error
    assert pull.attempts == 2
    model = LLMModel.objects.get(name="big", tag="latest")
    assert model.status == "ready" and model.digest == f"sha256:{SMOLLM_SHA256}"
    assert hashlib.sha256(Path(model.file_path).read_bytes()).hexdigest() == SMOLLM_SHA256
    assert not partial.exists()
    # The second worker continued the kept bytes instead of starting over.
    resumed = [s for s in model_server.seen if s.path == "/files/big.gguf"][downloads_before:]
    assert any(s.range.startswith("bytes=") and s.range != "bytes=0-0" and int(s.range[6:].split("-")[0]) > 0 for s in resumed), resumed


def _now() -> Any:
    from django.utils import timezone

    return timezone.now()
