"""Answer generation: a server-side asyncio job per answer, independent of any socket.

The job streams from the engine, batches deltas (at most one group message every
``STREAM_FLUSH_MS``), fans them out to the conversation's channel-layer group, answers
snapshot requests from sockets that join late, and obeys stop requests from any process.
It touches the database twice, plus one lease-and-checkpoint write at the start and every
GENERATION_CHECKPOINT_SECONDS: nothing per token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings
from django.db import connection
from django.utils.translation import gettext as _

from accounts.models import UsageOutcome
from generation.run import GenerationRun
from inference.engines import EngineError

from .events import conversation_group, relay
from .models import MessageStatus
from .services import message_checkpoint, message_finalize, messages_lease_extend
from .titles import start_auto_title

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

# Jobs running in this process, by assistant message id (tests and the bench look here).
RUNNING: dict[int, asyncio.Task[None]] = {}


def control_group(message_id: int) -> str:
    return f"gen.{message_id}"


@dataclass
class GenerationJob:
    """One browser answer: the assistant message it fills and its ``GenerationRun``."""

    conversation_id: str
    message_id: int
    run: GenerationRun
    #: Text already in the answer (a continuation): deltas start after it.
    prefix: str = ""
    #: Name the conversation in the background once this (its first) answer is done.
    auto_title: bool = False


async def publish(layer: BaseChannelLayer, group: str, event: dict[str, Any]) -> bool:
    """Send to a group; False instead of an exception when the layer (Redis) is down. An
    answer goes on generating and is stored either way; sockets resync when the layer is back
    (webio.layer_watch)."""
    try:
        await layer.group_send(group, event)
    except Exception:
        logger.warning("could not publish to %s (channel layer down?)", group, exc_info=True)
        return False
    return True


class _Answer:
    """The growing answer and its batched fan-out."""

    def __init__(self, layer: BaseChannelLayer, group: str, message_id: int, prefix: str = "") -> None:
        self.layer = layer
        self.group = group
        self.message_id = message_id
        self.sent: list[str] = [prefix] if prefix else []
        self.sent_length = len(prefix)
        self.started = False
        self.pending: list[str] = []
        self.last_flush = 0.0
        self.interval = settings.STREAM_FLUSH_MS / 1000
        self.lock = asyncio.Lock()
        #: A frame could not be published (Redis down): the next one is a snapshot.
        self.gap = False

    def text(self) -> str:
        return "".join(self.sent) + "".join(self.pending)

    async def add(self, text: str) -> None:
        self.pending.append(text)
        # The first token goes out at once (time to first token); later ones are batched.
        if not self.started or time.monotonic() - self.last_flush >= self.interval:
            await self.flush()

    async def flush(self) -> None:
        async with self.lock:  # flushes from the token loop and the timer must not reorder
            if not self.pending:
                return
            chunk = "".join(self.pending)
            self.pending.clear()
            start = self.sent_length
            self.sent.append(chunk)
            self.sent_length += len(chunk)
            self.started = True
            self.last_flush = time.monotonic()
            if self.gap:
                # Deltas were lost while the layer was down: the whole text, once, closes the gap.
                frame: dict[str, Any] = {"type": "snapshot", "id": self.message_id, "text": self.text()}
            else:
                frame = {"type": "delta", "id": self.message_id, "start": start, "text": chunk}
            self.gap = not await publish(self.layer, self.group, relay(frame))

    async def flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self.pending and time.monotonic() - self.last_flush >= self.interval:
                await self.flush()


def start_generation(job: GenerationJob) -> asyncio.Task[None]:
    task = asyncio.get_running_loop().create_task(run_generation(job), name=f"generation-{job.message_id}")
    RUNNING[job.message_id] = task
    task.add_done_callback(lambda _task: RUNNING.pop(job.message_id, None))
    return task


_OUTCOMES = {
    MessageStatus.COMPLETE: UsageOutcome.COMPLETE,
    MessageStatus.STOPPED: UsageOutcome.STOPPED,
    MessageStatus.ERROR: UsageOutcome.ERROR,
}


async def run_generation(job: GenerationJob) -> None:
    layer = get_channel_layer()
    assert layer is not None
    answer = _Answer(layer, conversation_group(job.conversation_id), job.message_id, job.prefix)
    control = await layer.new_channel()
    try:
        await layer.group_add(control_group(job.message_id), control)
    except Exception:  # Redis down: the answer still runs; Stop works once it is back (resubscribed)
        logger.warning("answer %s could not listen for stop requests", job.message_id, exc_info=True)
    stop_requested = asyncio.Event()
    listener = asyncio.create_task(_listen(layer, control, answer, stop_requested))
    ticker = asyncio.create_task(answer.flush_periodically())
    keeper = asyncio.create_task(_keep_lease(job.message_id, answer))
    status, error = MessageStatus.COMPLETE, ""
    streaming = asyncio.create_task(_stream(job, answer))
    try:
        stopping = asyncio.create_task(stop_requested.wait())
        await asyncio.wait({streaming, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not streaming.done():
            # Cancelling the stream closes the HTTP request: the engine frees the slot.
            streaming.cancel()
            status = MessageStatus.STOPPED
        stopping.cancel()
        try:
            await streaming
        except asyncio.CancelledError:
            if status != MessageStatus.STOPPED:
                raise
    except EngineError as exc:
        status, error = MessageStatus.ERROR, exc.message
    except asyncio.CancelledError:
        status = MessageStatus.STOPPED
    except Exception:
        logger.exception("generation %s failed", job.message_id)
        status, error = MessageStatus.ERROR, _("Something went wrong while generating the answer.")
    finally:
        streaming.cancel()  # a no-op once it has finished; stops it if this job was cancelled
        if not streaming.done():
            # This job was cancelled (the server shutting down): the engine stream must have
            # ended before ``run.finish`` closes it ("aclose(): asynchronous generator is
            # already running" otherwise, and no usage recorded).
            await asyncio.wait({streaming})
        ticker.cancel()
        listener.cancel()
        await answer.flush()
        try:
            await layer.group_discard(control_group(job.message_id), control)
        except Exception:
            logger.warning("answer %s could not leave its control group", job.message_id, exc_info=True)
    content = answer.text()
    run = job.run
    cut_off = status == MessageStatus.COMPLETE and run.done_reason == "length"
    # The one usage rule (generation.run) and the answer's one write, in one transaction. The
    # lease keeper runs until it is stored: a database that is restarting delays the write
    # (generation.run retries it) but must not let the lease run out meanwhile.
    try:
        await run.finish(
            _OUTCOMES[status],
            also=lambda: message_finalize(
                message_id=job.message_id,
                content=content,
                status=status,
                error=error,
                prompt_tokens=run.prompt_tokens,
                completion_tokens=run.completion_tokens,
                cut_off=cut_off,
            ),
        )
    finally:
        keeper.cancel()
    await publish(
        layer,
        answer.group,
        relay(
            {"type": "done", "id": job.message_id, "status": str(status), "content": content, "error": error, "cut_off": cut_off}
        ),
    )
    if job.auto_title and status == MessageStatus.COMPLETE:
        # After "done": naming the conversation never delays its answer.
        start_auto_title(conversation_id=job.conversation_id, user_id=run.user_id, model_name=run.model_name)


async def _stream(job: GenerationJob, answer: _Answer) -> None:
    async for text in job.run.texts():
        await answer.add(text)


# One thread of its own for every answer's lease writes in this process: it never waits behind
# the thread-sensitive executor (where a model may be loading for seconds), and it holds at
# most one database connection, given back after each write.
_LEASES = ThreadPoolExecutor(max_workers=1, thread_name_prefix="answer-leases")


# A lease write from a model load waits at most this long: with the database unreachable
# the load goes ahead (the engine logs the timeout).
_EXTEND_WAIT_SECONDS = 10.0


def _on_lease_thread(write: Callable[..., _T], **kwargs: Any) -> _T:
    """A lease write, run on ``_LEASES``: its connection goes back (to the pool) at once."""
    try:
        return write(**kwargs)
    finally:
        connection.close()


async def _keep_lease(message_id: int, answer: _Answer) -> None:
    """At once, then every GENERATION_CHECKPOINT_SECONDS: the text so far and a renewed lease,
    one write. If this process dies, the answer keeps that text and its lease runs out (the
    beat's ``messages_interrupted`` finalises it); nodes that restart leave other nodes'
    answers be. Not on the thread-sensitive executor: a model loading there (seconds) must not
    hold up the lease."""
    checkpoint = sync_to_async(partial(_on_lease_thread, message_checkpoint), thread_sensitive=False, executor=_LEASES)
    taken_noted = False
    while True:
        try:
            held = await checkpoint(message_id=message_id, content=answer.text(), lease_seconds=settings.GENERATION_LEASE_SECONDS)
        except Exception:  # a database blip must not end the answer; the next checkpoint retries
            logger.warning("could not checkpoint answer %s", message_id, exc_info=True)
        else:
            if not held and not taken_noted:
                # Deleted, or a sweep took this process for dead (it stood still past its
                # lease): the job goes on, and its final write and "done" correct the record.
                logger.warning("answer %s is no longer generating in the database while its job runs", message_id)
                taken_noted = True
        await asyncio.sleep(settings.GENERATION_CHECKPOINT_SECONDS)


def hold_leases_through_load(**_signal: Any) -> None:
    """``inference.signals.model_loading``: the process is about to stand still for a model
    load (the GIL is held throughout), so its running answers cannot renew their leases; give
    them GENERATION_LOAD_GRACE_SECONDS more first. The write runs on the lease thread, so the
    loading thread's own connection (and any transaction it is in) is left alone."""
    running = list(RUNNING)
    if not running:
        return
    seconds = settings.GENERATION_LEASE_SECONDS + settings.GENERATION_LOAD_GRACE_SECONDS
    job = _LEASES.submit(_on_lease_thread, messages_lease_extend, message_ids=running, seconds=seconds)
    held = job.result(timeout=_EXTEND_WAIT_SECONDS)
    logger.info("a model is loading: %d running answers hold their lease for %.0f s", held, seconds)


async def _listen(layer: BaseChannelLayer, channel: str, answer: _Answer, stop: asyncio.Event) -> None:
    while True:
        message = await layer.receive(channel)
        if message["type"] == "gen.stop":
            stop.set()
        elif message["type"] == "gen.snapshot":
            try:
                await layer.send(
                    message["reply_to"], relay({"type": "snapshot", "id": answer.message_id, "text": answer.text()})
                )
            except Exception:  # the asker resyncs again once the layer is back
                logger.warning("could not answer a snapshot request for %s", answer.message_id, exc_info=True)


async def request_stop(message_id: int) -> None:
    layer = get_channel_layer()
    assert layer is not None
    await layer.group_send(control_group(message_id), {"type": "gen.stop"})


async def request_snapshot(message_id: int, reply_to: str) -> None:
    layer = get_channel_layer()
    assert layer is not None
    await layer.group_send(control_group(message_id), {"type": "gen.snapshot", "reply_to": reply_to})
