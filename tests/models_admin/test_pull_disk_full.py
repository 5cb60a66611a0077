"""A pull on a disk that fills up while it writes: a real small file system (tmpfs) holds the
model store, and either the server sends no size (the space check cannot know) or another
program fills the disk once the download is under way. The pull fails at once with a reason
an admin can act on, gives the space back, registers nothing, and works once space is free."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import AbstractUser

from inference.fit import format_bytes
from models_admin.fetch import DiskFull, download
from models_admin.models import LLMModel, Pull, PullStatus
from models_admin.services import pulls
from models_admin.services.files import pull_temp_path
from models_admin.services.pulls import pull_run, pull_start

from .helpers import SMOLLM_BYTES, SMOLLM_SHA256, ModelServer, admin_socket

MiB = 1 << 20
PAGE = 4096
# Room for the model (93.8 MiB) with a little to spare, so a filler can take what it needs.
VOLUME_BYTES = 128 * MiB
THROTTLE = 32 * MiB  # bytes a second: a 3-second download, long enough to fill the disk during it
STOPPED_AT = re.compile(r"stopped at ([\d.]+) MiB")


@dataclass(frozen=True)
class Volume:
    mount: Path
    models: Path
    filler: Path  # what "another program" writes, outside the model store

    def used(self) -> int:
        return shutil.disk_usage(self.mount).used

    def files(self) -> list[Path]:
        return sorted(p for p in self.mount.rglob("*") if p.is_file())


def _mount_tmpfs(mount: Path) -> None:
    if os.geteuid() != 0:
        raise OSError("not running as root")
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={VOLUME_BYTES}", "tmpfs", str(mount)],
        check=True,
        capture_output=True,
        text=True,
    )


def _unmount(mount: Path) -> None:
    if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
        # Something still holds a file open there (a stuck filler): detach it anyway.
        subprocess.run(["umount", "-l", str(mount)], check=True, capture_output=True)


@pytest.fixture
def volume(settings: Any, tmp_path: Path) -> Iterator[Volume]:
    """A 128 MiB file system as the models volume; the import folder stays on the real disk."""
    mount = tmp_path / "volume"
    mount.mkdir()
    try:
        _mount_tmpfs(mount)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else str(exc)
        message = f"a real full disk needs a tmpfs mount (root): {detail}"
        # CI sets REQUIRE_SERVICES so that this can never pass there by skipping.
        if os.environ.get("REQUIRE_SERVICES"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        settings.MODELS_DIR = mount / "models"
        settings.MODELS_DIR.mkdir()
        settings.MODEL_IMPORT_DIR = tmp_path / "import"
        settings.MODEL_IMPORT_DIR.mkdir()
        # The default keeps 1 GiB free, more than this whole volume.
        settings.PULL_DISK_RESERVE_BYTES = 0
        yield Volume(mount=mount, models=settings.MODELS_DIR, filler=mount / "other-program.bin")
    finally:
        _unmount(mount)


def fill(path: Path, *, limit: int | None = None) -> int:
    """Write ``path`` as another program would: ``limit`` bytes, or until the disk is full."""
    block = b"\xff" * (4 * MiB)
    written = 0
    with path.open("wb", buffering=0) as out:
        try:
            while limit is None or written < limit:
                written += out.write(block[: (limit - written) if limit is not None else None])
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return path.stat().st_size


def fill_once(watched: Callable[[], Path], *, past: int, volume: Volume) -> Future[int]:
    """Fill the disk as soon as the file ``watched()`` holds more than ``past`` bytes."""

    def wait_then_fill() -> int:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if watched().stat().st_size > past:
                    return fill(volume.filler)
            except FileNotFoundError:
                pass
            time.sleep(0.001)
        raise AssertionError(f"{watched()} never grew past {past} bytes")

    executor = ThreadPoolExecutor(max_workers=1)
    future = executor.submit(wait_then_fill)
    executor.shutdown(wait=False)
    return future


def run(pull: Pull) -> Pull:
    """What the Celery task does, inline."""
    pull_run(pull_id=pull.id)
    pull.refresh_from_db()
    return pull


def stopped_at(error: str) -> int:
    match = STOPPED_AT.search(error)
    assert match, error
    return int(float(match.group(1)) * MiB)


def assert_failed_for_a_full_disk(pull: Pull, volume: Volume, *, of: int | None, verb: str = "download") -> None:
    assert pull.status == PullStatus.FAILED, (pull.status, pull.error)
    assert pull.attempts == 1  # not retried: a full disk stays full
    again = "import again" if verb == "import" else "pull again"
    total = f" of {re.escape(format_bytes(of))}" if of is not None else ""
    assert re.fullmatch(
        rf"The disk is full: the {verb} stopped at [\d.]+ MiB{total}\. "
        rf"Free some space on {re.escape(str(volume.models))} and {again}\.",
        pull.error,
    ), pull.error


def assert_gave_everything_back(pull: Pull, volume: Volume) -> None:
    """No partial file, no blob, no model: only the other program's file takes space."""
    assert not pull_temp_path(pull).exists()
    assert volume.files() == [volume.filler]
    # Directories take no space on tmpfs (files take whole pages): anything more is a leftover.
    assert volume.used() == -(-volume.filler.stat().st_size // PAGE) * PAGE
    assert not LLMModel.objects.exists()


def assert_pulled_smollm(pull: Pull, volume: Volume) -> None:
    assert pull.status == PullStatus.SUCCEEDED, pull.error
    model = LLMModel.objects.get(name="smol", tag="pulled")
    assert model.digest == f"sha256:{SMOLLM_SHA256}"
    assert Path(model.file_path) == volume.models / "blobs" / f"sha256-{SMOLLM_SHA256}"
    assert not list((volume.models / "tmp").iterdir())


def assert_pulls_once_space_is_free(actor: AbstractUser, name: str, volume: Volume) -> None:
    volume.filler.unlink()
    assert_pulled_smollm(run(pull_start(actor=actor, name=name, model_name="smol:pulled")), volume)


@pytest.mark.django_db
def test_a_disk_filled_by_another_program_mid_download_fails_the_pull_and_frees_its_space(
    admin_user: AbstractUser, volume: Volume, model_server: ModelServer
) -> None:
    model_server.files["m.gguf"] = SMOLLM_BYTES
    model_server.bytes_per_second = THROTTLE
    source = model_server.url("m.gguf")
    pull = pull_start(actor=admin_user, name=source, model_name="smol:pulled")
    filler = fill_once(lambda: pull_temp_path(pull), past=16 * MiB, volume=volume)

    pull = run(pull)

    assert filler.result(timeout=10) > 0
    assert pull.total_bytes == len(SMOLLM_BYTES)  # the size was known: the space check passed
    assert_failed_for_a_full_disk(pull, volume, of=len(SMOLLM_BYTES))
    assert 16 * MiB < stopped_at(pull.error) < len(SMOLLM_BYTES)
    assert_gave_everything_back(pull, volume)

    model_server.bytes_per_second = 0
    assert_pulls_once_space_is_free(admin_user, source, volume)


@pytest.mark.django_db
def test_a_download_of_unknown_size_that_outgrows_the_disk_fails_and_works_once_space_is_free(
    admin_user: AbstractUser, volume: Volume, model_server: ModelServer
) -> None:
    model_server.files["m.gguf"] = SMOLLM_BYTES
    model_server.sizeless = True
    fill(volume.filler, limit=64 * MiB)  # 64 MiB left: less than the model, which nobody can tell
    source = model_server.url("m.gguf")

    pull = run(pull_start(actor=admin_user, name=source, model_name="smol:pulled"))

    assert pull.total_bytes is None
    assert_failed_for_a_full_disk(pull, volume, of=None)
    assert 60 * MiB < stopped_at(pull.error) <= 64 * MiB
    assert_gave_everything_back(pull, volume)

    assert_pulls_once_space_is_free(admin_user, source, volume)


def test_a_download_onto_a_full_disk_raises_disk_full_and_deletes_its_partial_file(
    volume: Volume, model_server: ModelServer
) -> None:
    model_server.files["m.gguf"] = SMOLLM_BYTES
    fill(volume.filler, limit=64 * MiB)
    dest = volume.models / "m.gguf.partial"

    with pytest.raises(DiskFull) as full:
        download(model_server.url("m.gguf"), dest, max_bytes=1 << 30, allow_hosts=[model_server.host])

    assert full.value.total == len(SMOLLM_BYTES)
    assert 60 * MiB < full.value.written <= 64 * MiB
    assert str(full.value) == (
        f"The disk is full: the download stopped at {format_bytes(full.value.written)} of {format_bytes(len(SMOLLM_BYTES))}."
    )
    assert isinstance(full.value.__cause__, OSError) and full.value.__cause__.errno == errno.ENOSPC
    # Not kept for a resume, unlike after a network error: it holds the missing space.
    assert not dest.exists()
    assert volume.files() == [volume.filler]


def _safetensors(data_bytes: int) -> bytes:
    header = {"w": {"dtype": "U8", "shape": [data_bytes], "data_offsets": [0, data_bytes]}}
    encoded = json.dumps(header).encode()
    return struct.pack("<Q", len(encoded)) + encoded + bytes(data_bytes)


@pytest.mark.django_db
def test_a_safetensors_pull_that_fills_the_disk_removes_its_whole_folder(
    admin_user: AbstractUser, volume: Volume, model_server: ModelServer
) -> None:
    config = json.dumps({"model_type": "llama", "num_hidden_layers": 2, "max_position_embeddings": 2048}).encode()
    weights = _safetensors(80 * MiB)
    model_server.files.update({"config.json": config, "tokenizer.json": b"{}", "model.safetensors": weights})
    model_server.repos["acme/tiny"] = ["config.json", "model.safetensors", "tokenizer.json"]
    model_server.bytes_per_second = THROTTLE
    pull = pull_start(actor=admin_user, name="hf.co/acme/tiny")
    filler = fill_once(lambda: pull_temp_path(pull) / "model.safetensors", past=16 * MiB, volume=volume)

    pull = run(pull)

    assert filler.result(timeout=10) > 0
    total = len(config) + len(weights) + 2
    assert pull.total_bytes == total
    assert_failed_for_a_full_disk(pull, volume, of=total)
    assert 16 * MiB < stopped_at(pull.error) < len(weights)
    assert not (volume.models / "hf").exists()
    assert_gave_everything_back(pull, volume)  # config.json, downloaded first, is gone too

    volume.filler.unlink()
    model_server.bytes_per_second = 0
    retry = run(pull_start(actor=admin_user, name="hf.co/acme/tiny"))
    assert retry.status == PullStatus.SUCCEEDED, retry.error
    folder = volume.models / "hf" / "acme" / "tiny"
    assert Path(LLMModel.objects.get(name="hf.co/acme/tiny").file_path) == folder
    assert (folder / "model.safetensors").stat().st_size == len(weights)


@pytest.mark.django_db
def test_an_import_that_fills_the_disk_fails_and_leaves_the_original_alone(
    admin_user: AbstractUser, volume: Volume, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Path(settings.MODEL_IMPORT_DIR) / "smol.gguf"
    original.write_bytes(SMOLLM_BYTES)
    pull = pull_start(actor=admin_user, name="smol.gguf", model_name="smol:pulled")
    # A local copy is fast: the other program starts as soon as the copy's file appears, and
    # the copy's first progress report waits until it has filled the disk (in CI the whole
    # copy once finished before the other program got going).
    filler = fill_once(lambda: pull_temp_path(pull), past=-1, volume=volume)
    report = pulls._Reporter.progress

    def after_the_filler(reporter: Any, progress: Any) -> None:
        filler.result(timeout=30)
        report(reporter, progress)

    monkeypatch.setattr(pulls._Reporter, "progress", after_the_filler)

    pull = run(pull)

    assert filler.result(timeout=10) > 0
    assert_failed_for_a_full_disk(pull, volume, of=len(SMOLLM_BYTES), verb="import")
    assert_gave_everything_back(pull, volume)
    assert original.read_bytes() == SMOLLM_BYTES

    assert_pulls_once_space_is_free(admin_user, "smol.gguf", volume)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_admins_watching_the_models_page_see_the_disk_full_failure(
    admin_user: AbstractUser, volume: Volume, model_server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_server.files["m.gguf"] = SMOLLM_BYTES
    model_server.sizeless = True
    fill(volume.filler, limit=64 * MiB)
    queued: list[int] = []
    monkeypatch.setattr(pulls, "_enqueue_pull", queued.append)  # this test is the worker
    socket, connected = await admin_socket(admin_user)
    assert connected

    pull = await database_sync_to_async(pull_start)(actor=admin_user, name=model_server.url("m.gguf"))
    await database_sync_to_async(pull_run)(pull_id=pull.id)

    assert queued == [pull.id]
    last: dict[str, Any] = {}
    while last.get("status") != PullStatus.FAILED:
        event = json.loads(await socket.receive_from(timeout=10))
        if event["type"] == "pull" and event["pull"]["id"] == pull.id:
            last = event["pull"]
    await pull.arefresh_from_db()
    assert last["error"] == pull.error
    assert last["error"].startswith("The disk is full: the download stopped at ")
    await socket.disconnect()
