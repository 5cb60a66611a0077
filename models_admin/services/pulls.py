"""Pulls: queue, claim, download (GGUF, local import, safetensors), retry, cancel, recover."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import struct
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from inference.fit import format_bytes
from inference.gguf_info import GGUFInfo, InvalidGGUF, read_gguf_info

from ..fetch import (
    DiskFull,
    DownloadCancelled,
    DownloadError,
    DownloadTooLarge,
    InsufficientSpace,
    NoMatchingFile,
    Progress,
    UnsafeURL,
    disk_full_guard,
    download,
    ensure_space,
)
from ..models import Access, Backend, LLMModel, ModelStatus, Pull, PullKind, PullStatus
from ..names import InvalidModelName
from ..progress import notify_admins, pull_event
from ..sources import (
    Plan,
    Source,
    SourceError,
    check_source_url,
    parse_source,
    plan_files,
    request_headers,
)
from ..sources import allow_hosts as source_allow_hosts
from .audit import admin_action_record, models_changed
from .errors import ModelError, PullInterrupted, PullLost, UserLike, actor_id
from .files import blobs_dir, models_dir, pull_temp_path, temp_dir
from .registry import model_register_gguf, target_name

logger = logging.getLogger(__name__)

# Every attempt at a pull counts: retries after network errors and takeovers after a worker
# died. The task's ``max_retries`` is one less.
PULL_MAX_ATTEMPTS = 4
PROGRESS_WRITE_INTERVAL = 0.5  # seconds: the Pull row (and the sockets) at most twice a second


def _enqueue_pull(pull_id: int) -> None:
    from ..tasks import pull_model

    pull_model.delay(pull_id)


def pull_start(*, actor: UserLike, name: str, model_name: str = "") -> Pull:
    """Queue a pull of ``name`` (see sources.py for what it may be); the same source twice
    while it is queued or running gives the same pull."""
    try:
        source = parse_source(name, model_name=model_name)
        check_source_url(source)
    except SourceError as exc:
        raise ModelError(exc.message) from None
    except (UnsafeURL, DownloadError) as exc:
        raise ModelError(str(exc)) from None
    with transaction.atomic():
        existing = Pull.objects.active().filter(source_key=source.key).first()
        if existing is not None:
            return existing
        try:
            with transaction.atomic():
                pull = Pull.objects.create(
                    source=source.text,
                    source_key=source.key,
                    kind=source.kind,
                    model_name=source.model_name,
                    created_by_id=actor_id(actor),
                    detail="Waiting for a worker",
                )
        except IntegrityError:
            # Someone started the same pull a moment ago.
            return Pull.objects.active().get(source_key=source.key)
        admin_action_record(
            actor=actor, action="pull.start", target=source.text, details={"pull": pull.id, "model": source.model_name}
        )
        transaction.on_commit(lambda: _enqueue_pull(pull.id))
        transaction.on_commit(lambda: notify_admins(pull_event(pull)))
    return pull


def pull_cancel(*, actor: UserLike, pull: Pull) -> Pull:
    """Cancel a queued or running pull; a running one stops within a second or so."""
    if not pull.is_active:
        raise ModelError("This pull has already finished.")
    now = timezone.now()
    with transaction.atomic():
        # A queued pull, or one whose worker is gone, has nobody to tell: finish it here.
        unowned = Pull.objects.filter(pk=pull.pk).filter(
            Q(status=PullStatus.QUEUED) | Q(lease_until__isnull=True) | Q(lease_until__lt=now)
        )
        if unowned.update(
            status=PullStatus.CANCELLED,
            cancel_requested=True,
            detail="Cancelled",
            lease_owner="",
            lease_until=None,
            finished_at=now,
            updated_at=now,
        ):
            transaction.on_commit(lambda: _pull_cleanup(pull))
        else:
            Pull.objects.filter(pk=pull.pk).update(cancel_requested=True, detail="Cancelling…", updated_at=now)
        admin_action_record(actor=actor, action="pull.cancel", target=pull.source, details={"pull": pull.id})
    pull.refresh_from_db()
    transaction.on_commit(lambda: notify_admins(pull_event(pull)))
    return pull


def _pull_cleanup(pull: Pull) -> None:
    path = pull_temp_path(pull)
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _pull_claim(pull_id: int, owner: str) -> Pull | None:
    """Take the pull for this attempt, unless it is finished or a live attempt holds it."""
    now = timezone.now()
    claimable = Q(status=PullStatus.QUEUED) | Q(status=PullStatus.RUNNING) & (
        Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=owner)
    )
    claimed = (
        Pull.objects.filter(claimable, pk=pull_id)
        .filter(attempts__lt=PULL_MAX_ATTEMPTS)
        .update(
            status=PullStatus.RUNNING,
            lease_owner=owner,
            lease_until=now + timedelta(seconds=settings.PULL_LEASE_SECONDS),
            attempts=F("attempts") + 1,
            detail="Starting",
            updated_at=now,
        )
    )
    if not claimed:
        return None
    return Pull.objects.get(pk=pull_id)


class _Reporter:
    """Writes a running pull's progress to its row (at most twice a second, renewing the
    lease) and to the admin sockets; notices a cancel request on the way."""

    def __init__(self, pull: Pull, owner: str) -> None:
        self.pull = pull
        self.owner = owner
        self.offset = 0  # bytes of earlier files (multi-file pulls)
        self.last_write = 0.0
        self.cancelled = False

    def write(self, **fields: Any) -> None:
        now = timezone.now()
        fields.setdefault("updated_at", now)
        updated = Pull.objects.filter(pk=self.pull.pk, lease_owner=self.owner, cancel_requested=False).update(
            lease_until=now + timedelta(seconds=settings.PULL_LEASE_SECONDS), **fields
        )
        self.last_write = time.monotonic()
        if not updated:
            state = Pull.objects.filter(pk=self.pull.pk).values_list("lease_owner", "cancel_requested").first()
            if state is None or state[0] != self.owner:
                raise PullLost
            self.cancelled = True
            return
        for name, value in fields.items():
            setattr(self.pull, name, value)
        notify_admins(pull_event(self.pull))

    def progress(self, progress: Progress) -> None:
        if time.monotonic() - self.last_write < PROGRESS_WRITE_INTERVAL:
            return
        self.write(completed_bytes=self.offset + progress.completed, speed_bps=progress.speed_bps)

    def should_cancel(self) -> bool:
        return self.cancelled

    def finish(self, status: str, **fields: Any) -> None:
        now = timezone.now()
        fields.update(status=status, finished_at=now, updated_at=now, lease_owner="", lease_until=None, speed_bps=0.0)
        if Pull.objects.filter(pk=self.pull.pk, lease_owner=self.owner).update(**fields) == 0:
            raise PullLost
        for name, value in fields.items():
            setattr(self.pull, name, value)
        notify_admins(pull_event(self.pull))


def _is_transient(exc: DownloadError) -> bool:
    """Whether another attempt may get further (connection trouble, server errors)."""
    if isinstance(exc, DownloadTooLarge | DiskFull):
        return False  # a full disk stays full until someone frees space
    if isinstance(exc.__cause__ or exc.__context__, httpx.TransportError):
        return True
    text = str(exc)
    # fetch reports these with plain messages; a 4xx or a bad checksum will not improve.
    return text.startswith(("Could not connect", "The connection closed", "Download failed")) or bool(
        re.search(r"answered HTTP 5\d\d", text)
    )


def pull_run(*, pull_id: int, owner: str = "") -> None:
    """Run (or resume) a pull; called by the Celery task, safe to call twice.

    Raises PullInterrupted when a retry may succeed; every other outcome is recorded on
    the row: succeeded, failed with a reason, or cancelled.
    """
    owner = owner or uuid.uuid4().hex
    pull = _pull_claim(pull_id, owner)
    if pull is None:
        _pull_give_up_if_exhausted(pull_id)
        return
    reporter = _Reporter(pull, owner)
    try:
        if pull.cancel_requested:
            raise DownloadCancelled
        source = parse_source(pull.source, model_name=pull.model_name)
        if source.kind == PullKind.LOCAL:
            model = _pull_local(pull, source, reporter)
        else:
            reporter.write(detail="Looking up the model")
            plan = plan_files(source)
            if plan.kind != pull.kind:
                reporter.write(kind=plan.kind)
            reporter.write(total_bytes=plan.total_bytes, detail="Checking size and disk space")
            _check_size_and_space(pull, plan)
            if plan.kind == PullKind.HF_SAFETENSORS:
                model = _pull_safetensors(pull, source, plan, reporter)
            else:
                model = _pull_gguf(pull, source, plan, reporter)
        reporter.finish(
            PullStatus.SUCCEEDED,
            model=model,
            digest=model.digest,
            completed_bytes=model.size_bytes,
            total_bytes=model.size_bytes,
            detail="Ready",
            error="",
        )
    except PullLost:
        logger.warning("pull %s was taken over by another worker", pull_id)
    except DownloadCancelled:
        _pull_cleanup(pull)
        _finish_quietly(reporter, PullStatus.CANCELLED, detail="Cancelled")
    except DiskFull as exc:
        # Past the space check: the server sent no size, or another program filled the disk.
        _pull_fail(pull, reporter, _disk_full_message(pull, exc, earlier_bytes=reporter.offset))
    except DownloadError as exc:
        if _is_transient(exc) and pull.attempts < PULL_MAX_ATTEMPTS:
            # Keep the partial file: the retry continues it with a Range request.
            reporter.write(detail=f"Interrupted, retrying: {exc}"[:300], speed_bps=0.0)
            raise PullInterrupted(str(exc)) from exc
        _pull_fail(pull, reporter, str(exc))
    except (SourceError, ModelError) as exc:
        _pull_fail(pull, reporter, exc.message)
    except (UnsafeURL, InvalidGGUF, InsufficientSpace, NoMatchingFile, InvalidModelName) as exc:
        message = str(exc)
        if isinstance(exc, InvalidGGUF):
            message = f"The downloaded file is not a usable GGUF model: {exc}"
        _pull_fail(pull, reporter, message)
    except Exception as exc:  # never leave a pull "running" behind an unexpected bug
        logger.exception("pull %s failed", pull_id)
        _pull_fail(pull, reporter, f"Unexpected error: {type(exc).__name__}: {exc}")


def _disk_full_message(pull: Pull, exc: DiskFull, *, earlier_bytes: int) -> str:
    """Say how far the pull got and where to make room."""
    stopped = format_bytes(earlier_bytes + exc.written)
    at = f"{stopped} of {format_bytes(pull.total_bytes)}" if pull.total_bytes else stopped
    where = models_dir()
    if pull.kind == PullKind.LOCAL:
        return f"The disk is full: the import stopped at {at}. Free some space on {where} and import again."
    return f"The disk is full: the download stopped at {at}. Free some space on {where} and pull again."


def _finish_quietly(reporter: _Reporter, status: str, **fields: Any) -> None:
    try:
        reporter.finish(status, **fields)
    except PullLost:
        pass


def _pull_fail(pull: Pull, reporter: _Reporter, reason: str) -> None:
    logger.info("pull %s failed: %s", pull.id, reason)
    _pull_cleanup(pull)
    _finish_quietly(reporter, PullStatus.FAILED, error=reason[:2000], detail="Failed")


def _pull_give_up_if_exhausted(pull_id: int) -> None:
    """A pull whose attempts are used up by dead workers fails instead of waiting forever."""
    now = timezone.now()
    stale = Pull.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now),
        pk=pull_id,
        status__in=[PullStatus.QUEUED, PullStatus.RUNNING],
        attempts__gte=PULL_MAX_ATTEMPTS,
    )
    pull = stale.first()
    if pull is not None and stale.update(
        status=PullStatus.FAILED,
        error=f"The pull was interrupted {pull.attempts} times (workers stopped or lost the connection).",
        detail="Failed",
        finished_at=now,
        updated_at=now,
        lease_owner="",
        lease_until=None,
    ):
        _pull_cleanup(pull)
        pull.refresh_from_db()
        notify_admins(pull_event(pull))


def pulls_recover() -> list[int]:
    """Re-queue pulls no live worker holds: their worker died (lease ran out) or their
    message was lost. Runs when a worker starts and every minute (beat)."""
    now = timezone.now()
    lease = timedelta(seconds=settings.PULL_LEASE_SECONDS)
    stale = Pull.objects.filter(
        Q(status=PullStatus.RUNNING, lease_until__lt=now)
        | Q(status=PullStatus.RUNNING, lease_until__isnull=True)
        | Q(status=PullStatus.QUEUED, created_at__lt=now - lease)
    )
    ids = list(stale.values_list("pk", flat=True))
    for pull_id in ids:
        logger.info("re-queueing pull %s: no worker holds it", pull_id)
        _enqueue_pull(pull_id)
    return ids


def _check_size_and_space(pull: Pull, plan: Plan) -> None:
    total = plan.total_bytes
    if total is not None and total > settings.PULL_MAX_BYTES:
        raise ModelError(
            f"The model is {format_bytes(total)}, over the limit of {format_bytes(settings.PULL_MAX_BYTES)} (PULL_MAX_BYTES)."
        )
    temp = pull_temp_path(pull)
    have = 0
    if temp.is_file():
        have = temp.stat().st_size
    elif temp.is_dir():
        have = sum(p.stat().st_size for p in temp.iterdir() if p.is_file())
    needed = max((total or 0) - have, 0)
    ensure_space(models_dir(), needed_bytes=needed, reserve_bytes=settings.PULL_DISK_RESERVE_BYTES)


def _store_blob(temp: Path, sha256_hex: str) -> Path:
    """Move a verified download to its content-addressed name (atomic: same file system)."""
    blob = blobs_dir() / f"sha256-{sha256_hex}"
    if blob.exists():
        temp.unlink(missing_ok=True)  # the same bytes are already there (another name, an earlier pull)
    else:
        os.replace(temp, blob)
        _fsync_dir(blob.parent)
    return blob


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _register_pulled_gguf(pull: Pull, source: Source, blob: Path, sha256_hex: str, info: GGUFInfo) -> LLMModel:
    name, tag = target_name(pull.model_name)
    return model_register_gguf(
        name=name, tag=tag, path=blob, digest=f"sha256:{sha256_hex}", source=source.text, info=info
    )


def _download_kwargs(source: Source, reporter: _Reporter) -> dict[str, Any]:
    return {
        "max_bytes": settings.PULL_MAX_BYTES,
        "allow_hosts": source_allow_hosts(source),
        "allow_private": settings.PULL_ALLOW_PRIVATE,
        "headers": request_headers(source),
        "on_progress": reporter.progress,
        "should_cancel": reporter.should_cancel,
    }


def _pull_gguf(pull: Pull, source: Source, plan: Plan, reporter: _Reporter) -> LLMModel:
    temp = pull_temp_path(pull)
    reporter.write(detail="Downloading")
    result = download(plan.files[0].url, temp, resume=True, **_download_kwargs(source, reporter))
    reporter.write(completed_bytes=result.size, total_bytes=result.size, detail="Verifying", speed_bps=0.0)
    try:
        info = read_gguf_info(temp)
    except InvalidGGUF:
        temp.unlink(missing_ok=True)
        raise
    blob = _store_blob(temp, result.sha256)
    return _register_pulled_gguf(pull, source, blob, result.sha256, info)


def _pull_local(pull: Pull, source: Source, reporter: _Reporter) -> LLMModel:
    """Import a file from the import folder: copied (and hashed) into the blob store, so the
    original stays the admin's and deleting the model never touches it."""
    assert source.path is not None
    size = source.path.stat().st_size
    if size > settings.PULL_MAX_BYTES:
        raise ModelError(f"The file is {format_bytes(size)}, over the limit of {format_bytes(settings.PULL_MAX_BYTES)}.")
    # Validate before copying gigabytes: a wrong file fails at once.
    info = read_gguf_info(source.path)
    ensure_space(models_dir(), needed_bytes=size, reserve_bytes=settings.PULL_DISK_RESERVE_BYTES)
    reporter.write(total_bytes=size, detail="Copying")
    temp = pull_temp_path(pull)
    digest = hashlib.sha256()
    started = time.monotonic()
    copied = 0
    # Another program can fill the disk after the space check: fail as a download would.
    with disk_full_guard(temp, total=size), source.path.open("rb") as src, temp.open("wb") as out:
        while chunk := src.read(4 << 20):
            if reporter.should_cancel():
                raise DownloadCancelled
            out.write(chunk)
            digest.update(chunk)
            copied += len(chunk)
            elapsed = time.monotonic() - started
            reporter.progress(
                Progress(completed=copied, total=size, speed_bps=copied / elapsed if elapsed else 0.0, eta_seconds=None)
            )
        out.flush()
        os.fsync(out.fileno())
    if copied != size:
        raise ModelError("The file changed while it was being imported; try again.")
    info = read_gguf_info(temp)
    blob = _store_blob(temp, digest.hexdigest())
    return _register_pulled_gguf(pull, source, blob, digest.hexdigest(), info)


def _check_safetensors(path: Path) -> None:
    """A safetensors file starts with an 8-byte header length and a JSON header."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(8)
        if len(head) != 8:
            raise ModelError(f"{path.name} is not a safetensors file (too short).")
        (length,) = struct.unpack("<Q", head)
        if length > min(size - 8, 100 << 20):
            raise ModelError(f"{path.name} is not a safetensors file (bad header length).")
        try:
            header = json.loads(handle.read(length))
        except ValueError:
            raise ModelError(f"{path.name} is not a safetensors file (bad header).") from None
    data_size = size - 8 - length
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    if ends and max(ends) > data_size:
        raise ModelError(f"{path.name} is truncated: its tensors need {max(ends)} bytes, it has {data_size}.")


def _pull_safetensors(pull: Pull, source: Source, plan: Plan, reporter: _Reporter) -> LLMModel:
    """Download a transformers repository for vLLM into MODELS_DIR/hf/<org>/<repo>."""
    folder = pull_temp_path(pull)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = hashlib.sha256()
    total = 0
    for remote in plan.files:
        reporter.write(detail=f"Downloading {remote.name}")
        result = download(remote.url, folder / remote.name, resume=True, **_download_kwargs(source, reporter))
        reporter.offset += result.size
        total += result.size
        manifest.update(f"{remote.name} {result.sha256}\n".encode())
    reporter.write(detail="Verifying", completed_bytes=total, speed_bps=0.0)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ModelError("The repository's config.json is not valid JSON.") from None
    if not isinstance(config, dict):
        raise ModelError("The repository's config.json is not a JSON object.")
    for remote in plan.files:
        if remote.name.endswith(".safetensors"):
            _check_safetensors(folder / remote.name)
    org, repo = source.repo_id.split("/")
    target = models_dir() / "hf" / org / repo
    target.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if target.exists():
        old = temp_dir() / f"replaced-{pull.id}-{uuid.uuid4().hex[:8]}"
        os.replace(target, old)
    os.replace(folder, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    name, tag = target_name(pull.model_name)
    nested = config.get("text_config")
    text_config: dict[str, Any] = nested if isinstance(nested, dict) else config
    context = int(text_config.get("max_position_embeddings") or config.get("max_position_embeddings") or 4096)
    details = {
        key: text_config.get(hf_key)
        for key, hf_key in (
            ("block_count", "num_hidden_layers"),
            ("embedding_length", "hidden_size"),
            ("head_count", "num_attention_heads"),
            ("head_count_kv", "num_key_value_heads"),
            ("key_length", "head_dim"),
            ("value_length", "head_dim"),
            ("context_length", "max_position_embeddings"),
        )
    }
    details["architecture"] = str(config.get("model_type", ""))
    with transaction.atomic():
        model, created = LLMModel.objects.update_or_create(
            name=name,
            tag=tag,
            defaults={
                "backend": Backend.VLLM,
                "upstream_name": source.repo_id,
                "file_path": str(target),
                "family": str(config.get("model_type", "")),
                "format": "safetensors",
                "quantization_level": str(config.get("torch_dtype", "") or config.get("dtype", "")),
                "size_bytes": total,
                "digest": f"sha256:{manifest.hexdigest()}",
                "context_length": min(context, 2**31 - 1),
                "capabilities": ["completion"],
                "details": details,
                "source": source.text,
                "status": ModelStatus.READY,
            },
        )
        if created:
            # Nobody can chat with it until a vLLM endpoint serves it; admins open it up then.
            model.access = Access.RESTRICTED
            model.save(update_fields=["access"])
    models_changed("registered")
    return model
