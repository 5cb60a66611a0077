"""Celery tasks: thin wrappers that take ids and call a service.

A pull survives a worker that dies mid-download in two ways: ``acks_late`` with
``reject_on_worker_lost`` gives the message back when a pool process is killed, and
``pulls_recover`` (when a worker starts, and every minute from beat) re-queues pulls whose
lease ran out, which covers a whole worker killed at once and the filesystem broker of the
embedded mode, where a taken message is gone. A short Redis ``visibility_timeout`` would
also redeliver, but it would hand a long, healthy pull to a second worker; the lease makes
any duplicate a no-op instead.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task
from celery.signals import worker_ready

from .services import endpoints, pulls
from .services.errors import PullInterrupted

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(PullInterrupted,),
    retry_backoff=5,
    retry_backoff_max=60,
    retry_jitter=False,
    max_retries=pulls.PULL_MAX_ATTEMPTS - 1,
)
def pull_model(self: Task, pull_id: int) -> None:
    # The task id stays the same across retries, so a retry reclaims its own lease at once.
    pulls.pull_run(pull_id=pull_id, owner=self.request.id or "")


@shared_task(acks_late=True, ignore_result=True)
def pulls_recover() -> list[int]:
    return pulls.pulls_recover()


@shared_task(ignore_result=True, expires=60)
def vllm_endpoints_check() -> None:
    endpoints.vllm_endpoints_check()


@worker_ready.connect
def _recover_pulls_on_start(sender: Any = None, **kwargs: Any) -> None:
    try:
        recovered = pulls.pulls_recover()
    except Exception:  # a database hiccup at start must not keep the worker down
        logger.exception("could not look for interrupted pulls")
        return
    if recovered:
        logger.info("re-queued interrupted pulls %s", recovered)
