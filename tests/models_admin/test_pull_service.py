"""The pull service, run inline as the Celery task runs it: each kind of source ends in a
registered, content-addressed model; one source is one pull; interruptions resume; cancels
clean up; copies share files and deletes remove them once unused."""

from __future__ import annotations

import json
import struct
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser
from django.db import connection
from django.utils import timezone

from models_admin.models import Access, AdminAction, Backend, LLMModel, Pull, PullKind, PullStatus
from models_admin.services import pulls, registry
from models_admin.services.errors import PullInterrupted
from models_admin.services.files import pull_temp_path
from models_admin.services.pulls import pull_cancel, pull_run, pull_start

from .helpers import SMOLLM, SMOLLM_BYTES, SMOLLM_SHA256, ModelServer, wait_for


def run(pull: Pull) -> Pull:
    pull_run(pull_id=pull.id)
    pull.refresh_from_db()
    return pull


@pytest.mark.django_db
def test_url_pull_registers_a_content_addressed_ready_model(
    admin_user: AbstractUser, models_dir: Path, model_server: ModelServer
) -> None:
    model_server.files["SmolLM2-135M-Instruct.Q4_1.gguf"] = SMOLLM_BYTES
    pull = run(pull_start(actor=admin_user, name=model_server.url("SmolLM2-135M-Instruct.Q4_1.gguf")))

    assert pull.status == PullStatus.SUCCEEDED, pull.error
    assert pull.digest == f"sha256:{SMOLLM_SHA256}"
    assert pull.completed_bytes == pull.total_bytes == len(SMOLLM_BYTES)
    model = LLMModel.objects.get(name="smollm2-135m-instruct.q4_1", tag="latest")
    assert pull.model == model
    assert model.status == "ready" and model.backend == Backend.EMBEDDED
    assert Path(model.file_path) == models_dir / "blobs" / f"sha256-{SMOLLM_SHA256}"
    assert Path(model.file_path).read_bytes() == SMOLLM_BYTES
    assert (model.family, model.quantization_level, model.parameter_size) == ("llama", "Q4_1", "135M")
    assert model.details["block_count"] == 30 and "completion" in model.capabilities
    assert not pull_temp_path(pull).exists()


@pytest.mark.django_db
def test_hf_name_picks_the_quantization_through_hf_endpoint(
    admin_user: AbstractUser, models_dir: Path, model_server: ModelServer, settings: Any
) -> None:
    settings.PULL_ALLOW_HOSTS = []  # the configured hub is trusted without the allow-list
    model_server.files["SmolLM2-135M-Instruct.Q4_1.gguf"] = SMOLLM_BYTES
    model_server.repos["acme/SmolLM2-GGUF"] = ["README.md", "SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct.Q8_0.gguf"]
    pull = run(pull_start(actor=admin_user, name="hf.co/acme/SmolLM2-GGUF:Q4_1"))
    assert pull.status == PullStatus.SUCCEEDED, pull.error
    assert pull.kind == PullKind.HF_GGUF
    model = LLMModel.objects.get(name="hf.co/acme/smollm2-gguf", tag="q4_1")
    assert model.digest == f"sha256:{SMOLLM_SHA256}"
    assert any(seen.path == "/acme/SmolLM2-GGUF/resolve/main/SmolLM2-135M-Instruct.Q4_1.gguf" for seen in model_server.seen)


@pytest.mark.django_db
def test_hf_quantization_that_does_not_exist_names_the_available_ones(
    admin_user: AbstractUser, models_dir: Path, model_server: ModelServer
) -> None:
    model_server.repos["acme/SmolLM2-GGUF"] = ["SmolLM2-135M-Instruct.Q4_1.gguf"]
    pull = run(pull_start(actor=admin_user, name="hf.co/acme/SmolLM2-GGUF:Q6_K"))
    assert pull.status == PullStatus.FAILED
    assert "Q6_K" in pull.error and "Q4_1" in pull.error


def _safetensors(tensors: dict[str, tuple[list[int], bytes]]) -> bytes:
    header: dict[str, Any] = {}
    offset = 0
    for name, (shape, data) in tensors.items():
        header[name] = {"dtype": "F16", "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    encoded = json.dumps(header).encode()
    return struct.pack("<Q", len(encoded)) + encoded + b"".join(data for _shape, data in tensors.values())


@pytest.mark.django_db
def test_hf_repo_without_tag_downloads_safetensors_for_vllm(
    admin_user: AbstractUser, models_dir: Path, model_server: ModelServer
) -> None:
    config = {"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 8, "num_attention_heads": 2,
              "num_key_value_heads": 1, "max_position_embeddings": 2048, "torch_dtype": "bfloat16"}
    weights = _safetensors({"w": ([2, 2], b"\x00" * 8)})
    model_server.files.update({"config.json": json.dumps(config).encode(), "tokenizer.json": b"{}", "model.safetensors": weights})
    model_server.repos["acme/tiny"] = ["config.json", "tokenizer.json", "model.safetensors", "README.md", "onnx/model.onnx"]

    pull = run(pull_start(actor=admin_user, name="hf.co/acme/tiny"))

    assert pull.status == PullStatus.SUCCEEDED, pull.error
    model = LLMModel.objects.get(name="hf.co/acme/tiny", tag="latest")
    assert (model.backend, model.format, model.upstream_name) == (Backend.VLLM, "safetensors", "acme/tiny")
    folder = models_dir / "hf" / "acme" / "tiny"
    assert Path(model.file_path) == folder
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]
    assert model.context_length == 2048 and model.details["head_count_kv"] == 1
    # Nobody may chat with it before a vLLM server serves it and an admin opens it up.
    assert model.access == Access.RESTRICTED
    assert not list((models_dir / "tmp").iterdir())


@pytest.mark.django_db
def test_hf_repo_with_a_broken_safetensors_file_fails(
    admin_user: AbstractUser, models_dir: Path, model_server: ModelServer
) -> None:
    config = {"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 8, "num_attention_heads": 2, "max_position_embeddings": 64}
    broken = _safetensors({"w": ([2, 2], b"\x00" * 8)})[:-4]
    model_server.files.update({"config.json": json.dumps(config).encode(), "model.safetensors": broken})
    model_server.repos["acme/broken"] = ["config.json", "model.safetensors"]
    pull = run(pull_start(actor=admin_user, name="hf.co/acme/broken"))
    assert pull.status == PullStatus.FAILED
    assert "truncated" in pull.error
    assert not (models_dir / "hf" / "acme" / "broken").exists()
    assert not pull_temp_path(pull).exists()


@pytest.mark.django_db
def test_import_copies_the_file_and_delete_never_touches_the_original(
    admin_user: AbstractUser, models_dir: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    original = Path(settings.MODEL_IMPORT_DIR) / "team" / "smol.gguf"
    original.parent.mkdir()
    original.write_bytes(SMOLLM_BYTES)
    pull = run(pull_start(actor=admin_user, name="team/smol.gguf", model_name="smol:import"))
    assert pull.status == PullStatus.SUCCEEDED, pull.error
    model = LLMModel.objects.get(name="smol", tag="import")
    blob = Path(model.file_path)
    assert blob.parent == models_dir / "blobs" and blob.read_bytes() == SMOLLM_BYTES

    with django_capture_on_commit_callbacks(execute=True):
        registry.model_delete(actor=admin_user, name="smol:import")
    assert not blob.exists()
    assert original.read_bytes() == SMOLLM_BYTES


@pytest.mark.django_db
def test_the_same_source_twice_is_one_pull(admin_user: AbstractUser, bob: AbstractUser, models_dir: Path, model_server: ModelServer) -> None:
    model_server.files["m.gguf"] = SMOLLM_BYTES
    first = pull_start(actor=admin_user, name=model_server.url("m.gguf"))
    second = pull_start(actor=bob, name=f"  {model_server.url('m.gguf')}  ")
    assert first.pk == second.pk
    assert Pull.objects.count() == 1
    run(first)
    # Once finished, the same source starts a new pull (a refresh).
    third = pull_start(actor=admin_user, name=model_server.url("m.gguf"))
    assert third.pk != first.pk


@pytest.mark.django_db
def test_an_interrupted_download_resumes_where_it_stopped(
    admin_user: AbstractUser, models_dir: Path, model_server: ModelServer
) -> None:
    model_server.files["m.gguf"] = SMOLLM_BYTES
    model_server.cut_after = 30_000_000
    pull = pull_start(actor=admin_user, name=model_server.url("m.gguf"))
    with pytest.raises(PullInterrupted):
        pull_run(pull_id=pull.id, owner="task-1")
    pull.refresh_from_db()
    assert pull.status == PullStatus.RUNNING and "retrying" in pull.detail
    partial = pull_temp_path(pull)
    kept = partial.stat().st_size
    assert 20_000_000 < kept <= 30_000_000
    assert not LLMModel.objects.filter(name="m").exists()

    pull_run(pull_id=pull.id, owner="task-1")  # the retry of the same task
    pull.refresh_from_db()
    assert pull.status == PullStatus.SUCCEEDED, pull.error
    assert pull.digest == f"sha256:{SMOLLM_SHA256}"
    assert model_server.seen[-1].range == f"bytes={kept}-"
    assert not partial.exists()


@pytest.mark.django_db
def test_a_pull_held_by_a_live_attempt_is_not_run_twice(admin_user: AbstractUser, models_dir: Path, model_server: ModelServer) -> None:
    model_server.files["m.gguf"] = SMOLLM_BYTES
    pull = pull_start(actor=admin_user, name=model_server.url("m.gguf"))
    assert pulls._pull_claim(pull.id, "worker-a") is not None
    pull_run(pull_id=pull.id, owner="worker-b")  # a duplicate delivery
    pull.refresh_from_db()
    assert (pull.status, pull.lease_owner) == (PullStatus.RUNNING, "worker-a")
    assert not any(seen.path == "/files/m.gguf" for seen in model_server.seen)


@pytest.mark.django_db
def test_a_queued_pull_is_cancelled_at_once(admin_user: AbstractUser, models_dir: Path, model_server: ModelServer) -> None:
    model_server.files["m.gguf"] = SMOLLM_BYTES
    pull = pull_cancel(actor=admin_user, pull=pull_start(actor=admin_user, name=model_server.url("m.gguf")))
    assert pull.status == PullStatus.CANCELLED
    run(pull)  # the task arriving later does nothing
    assert Pull.objects.get(pk=pull.pk).status == PullStatus.CANCELLED
    assert AdminAction.objects.filter(action="pull.cancel", target=pull.source).exists()
    assert not model_server.seen


@pytest.mark.django_db(transaction=True)
def test_a_running_pull_stops_on_cancel_and_cleans_up(admin_user: AbstractUser, models_dir: Path, model_server: ModelServer) -> None:
    model_server.files["m.gguf"] = SMOLLM_BYTES
    model_server.bytes_per_second = 10_000_000
    pull = pull_start(actor=admin_user, name=model_server.url("m.gguf"))

    def work() -> None:
        try:
            pull_run(pull_id=pull.id, owner="w")
        finally:
            connection.close()  # this thread's own connection

    worker = threading.Thread(target=work)
    worker.start()
    wait_for(lambda: Pull.objects.get(pk=pull.pk).completed_bytes > 0, timeout=20, message="progress")
    started = time.monotonic()
    pull_cancel(actor=admin_user, pull=Pull.objects.get(pk=pull.pk))
    worker.join(timeout=20)
    assert time.monotonic() - started < 5
    pull.refresh_from_db()
    assert pull.status == PullStatus.CANCELLED
    assert 0 < pull.completed_bytes < len(SMOLLM_BYTES)
    assert not pull_temp_path(pull).exists()
    assert not LLMModel.objects.filter(name="m").exists()


@pytest.mark.django_db
def test_progress_is_written_at_most_twice_a_second(admin_user: AbstractUser, models_dir: Path, model_server: ModelServer, monkeypatch: pytest.MonkeyPatch) -> None:
    model_server.files["m.gguf"] = SMOLLM_BYTES
    model_server.bytes_per_second = 40_000_000
    writes: list[float] = []
    original = pulls._Reporter.write

    def counting(self: pulls._Reporter, **fields: Any) -> None:
        if "completed_bytes" in fields and "detail" not in fields:
            writes.append(time.monotonic())
        original(self, **fields)

    monkeypatch.setattr(pulls._Reporter, "write", counting)
    pull = run(pull_start(actor=admin_user, name=model_server.url("m.gguf")))
    assert pull.status == PullStatus.SUCCEEDED
    assert len(writes) >= 3
    gaps = [b - a for a, b in zip(writes, writes[1:], strict=False)]
    assert min(gaps) >= pulls.PROGRESS_WRITE_INTERVAL * 0.95


@pytest.mark.django_db
def test_a_re_pull_replaces_the_file_and_removes_the_old_one(
    admin_user: AbstractUser, models_dir: Path, model_server: ModelServer, django_capture_on_commit_callbacks: Any
) -> None:
    other = SMOLLM_BYTES[:-8] + b"\x00" * 8  # same header, different bytes at the end
    model_server.files["m.gguf"] = other
    first = run(pull_start(actor=admin_user, name=model_server.url("m.gguf")))
    old_blob = Path(LLMModel.objects.get(name="m").file_path)
    model_server.files["m.gguf"] = SMOLLM_BYTES
    with django_capture_on_commit_callbacks(execute=True):
        second = pull_start(actor=admin_user, name=model_server.url("m.gguf"))
    with django_capture_on_commit_callbacks(execute=True):
        second = run(second)
    assert (first.status, second.status) == (PullStatus.SUCCEEDED, PullStatus.SUCCEEDED)
    model = LLMModel.objects.get(name="m")
    assert model.digest == f"sha256:{SMOLLM_SHA256}"
    assert not old_blob.exists()


@pytest.mark.django_db
def test_copies_share_the_file_until_the_last_one_is_deleted(
    admin_user: AbstractUser, models_dir: Path, model_server: ModelServer, django_capture_on_commit_callbacks: Any
) -> None:
    model_server.files["m.gguf"] = SMOLLM_BYTES
    run(pull_start(actor=admin_user, name=model_server.url("m.gguf")))
    copy = registry.model_copy(actor=admin_user, source="m", destination="m-copy:v2")
    custom = registry.model_create(actor=admin_user, name="m-custom", from_="m", system="Be brief.")
    blob = Path(copy.file_path)
    assert custom.file_path == copy.file_path == LLMModel.objects.get(name="m").file_path

    with django_capture_on_commit_callbacks(execute=True):
        registry.model_delete(actor=admin_user, name="m")
        registry.model_delete(actor=admin_user, name="m-copy:v2")
    assert blob.exists(), "the custom model still uses the file"
    with django_capture_on_commit_callbacks(execute=True):
        registry.model_delete(actor=admin_user, name="m-custom")
    assert not blob.exists()
    assert [a.action for a in AdminAction.objects.order_by("created_at")][-5:] == [
        "model.copy", "model.create", "model.delete", "model.delete", "model.delete",
    ]


@pytest.mark.django_db
def test_deleting_the_bundled_model_keeps_its_package_file(admin_user: AbstractUser, smollm: LLMModel) -> None:
    registry.model_delete(actor=admin_user, name=smollm.full_name)
    assert not LLMModel.objects.exists()
    assert SMOLLM.exists()


@pytest.mark.django_db
def test_recover_requeues_pulls_whose_worker_is_gone(admin_user: AbstractUser, models_dir: Path, model_server: ModelServer, monkeypatch: pytest.MonkeyPatch) -> None:
    model_server.files["m.gguf"] = SMOLLM_BYTES
    live = pull_start(actor=admin_user, name=model_server.url("m.gguf"))
    dead = pull_start(actor=admin_user, name=model_server.url("other.gguf"))
    pulls._pull_claim(live.pk, "alive")
    pulls._pull_claim(dead.pk, "dead")
    Pull.objects.filter(pk=dead.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    queued: list[int] = []
    monkeypatch.setattr(pulls, "_enqueue_pull", queued.append)
    assert pulls.pulls_recover() == [dead.pk]
    assert queued == [dead.pk]
