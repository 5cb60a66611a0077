"""Bounds on one generation request, so that no request can make the process do unbounded
work or starve other users: messages per request, prompt bytes, and the user's quotas
(tokens per day and month, requests per minute, answers running at once). The engine calls
per request are bounded in ``inference.prompting`` (context fit).

Requests per minute and running answers are counted in the Django cache (Redis when
REDIS_URL is set, so every web process shares them; in-process in embedded mode, which has
one web process), never in a process's own memory.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import formats, timezone
from django.utils.timesince import timeuntil
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.selectors import EffectiveQuota, day_bounds, effective_quota, next_month, tokens_used

from inference.engines.base import ChatMessage
from observability import metrics
from inference.prompting import text_of

logger = logging.getLogger(__name__)


class GenerationRefused(Exception):
    """A request refused before the engine is called. ``status`` is the HTTP status the API
    answers with; ``message`` is for people (the browser shows it as it is)."""

    def __init__(self, message: str, *, status: int, code: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.retry_after = retry_after


def check_message_count(count: int) -> None:
    """Refuse a request with too many messages (413); the API checks this right after parsing."""
    if count > settings.MAX_MESSAGES_PER_REQUEST:
        raise GenerationRefused(
            _("Too many messages in one request: %(count)d, at most %(limit)d.")
            % {"count": count, "limit": settings.MAX_MESSAGES_PER_REQUEST},
            status=413,
            code="too_many_messages",
        )


def check_prompt(*, messages: Sequence[ChatMessage] | None, prompt: str | None) -> None:
    """Refuse a request with too many messages or too much text (413)."""
    if messages is not None:
        check_message_count(len(messages))
    size = len(prompt.encode()) if prompt is not None else 0
    for message in messages or ():
        # Stops early: a huge request costs no more than the limit to refuse.
        size += len(text_of(message).encode())
        if size > settings.MAX_PROMPT_BYTES:
            break
    if size > settings.MAX_PROMPT_BYTES:
        raise GenerationRefused(
            _("The request is too long: at most %(limit)d bytes of text in one request.")
            % {"limit": settings.MAX_PROMPT_BYTES},
            status=413,
            code="prompt_too_large",
        )


# ---- Quotas: tokens per day and month (from the usage records) ---------------------------------


def _reset_phrase(reset: datetime, now: datetime) -> str:
    local = timezone.localtime(reset)
    return _("It resets on %(when)s (in %(wait)s).") % {
        "when": formats.date_format(local, "DATETIME_FORMAT"),
        "wait": timeuntil(reset, now),
    }


def _seconds_until(reset: datetime, now: datetime) -> int:
    return max(1, math.ceil((reset - now).total_seconds()))


def check_tokens(*, user_id: int, quota: EffectiveQuota, now: datetime | None = None) -> None:
    """Refuse (429 until the reset) when the user has used up their tokens of the day or month.

    Checked before the answer starts, so one answer may end above the limit; the next is refused.
    """
    if not quota.counts_tokens:
        return
    now = now or timezone.now()
    used = tokens_used(user_id=user_id, now=now)
    today = timezone.localdate(now)
    per_day, per_month = quota.tokens_per_day.value, quota.tokens_per_month.value
    if per_month is not None and used.month >= per_month:
        reset = day_bounds(next_month(today))[0]
        raise GenerationRefused(
            _("You have used your monthly quota of %(limit)s tokens (%(used)s used).")
            % {"limit": formats.number_format(per_month, force_grouping=True),
               "used": formats.number_format(used.month, force_grouping=True)}
            + " " + _reset_phrase(reset, now),
            status=429,
            code="insufficient_quota",
            retry_after=_seconds_until(reset, now),
        )
    if per_day is not None and used.today >= per_day:
        reset = day_bounds(today + timedelta(days=1))[0]
        raise GenerationRefused(
            _("You have used your daily quota of %(limit)s tokens (%(used)s used).")
            % {"limit": formats.number_format(per_day, force_grouping=True),
               "used": formats.number_format(used.today, force_grouping=True)}
            + " " + _reset_phrase(reset, now),
            status=429,
            code="insufficient_quota",
            retry_after=_seconds_until(reset, now),
        )


# ---- Quotas: requests per minute and running answers (shared counters in the cache) -----------

# A slot is given back when its answer ends; if the process holding it dies first, the count
# expires this long after the user's last new answer, so a crash cannot block anyone for good.
SLOT_SAFETY_SECONDS = 15 * 60


def _key(kind: str, user_id: int, *extra: object) -> str:
    # Per database, like the admin socket group: installations sharing one Redis stay apart.
    db = settings.DATABASES["default"]
    where = f"{db.get('HOST', '')}:{db.get('PORT', '')}/{db.get('NAME', '')}"
    digest = hashlib.sha256(where.encode()).hexdigest()[:12]
    return ":".join(["quota", kind, digest, str(user_id), *(str(e) for e in extra)])


def _counters_unreachable() -> GenerationRefused:
    return GenerationRefused(
        _("The server cannot count your requests at the moment. Please try again in a few seconds."),
        status=503,
        code="service_unavailable",
        retry_after=2,
    )


def _incr(key: str, timeout: int) -> int:
    """Add one to a shared counter; 503 "try again" when the cache (Redis) is unreachable: a
    request that cannot be counted is refused rather than let past every quota."""
    try:
        cache.add(key, 0, timeout)
        try:
            return int(cache.incr(key))
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout)
            return 1
    except Exception as exc:
        logger.warning("quota counter %s unreachable", key, exc_info=True)
        raise _counters_unreachable() from exc


def count_request(*, user_id: int, limit: int | None, now: float | None = None) -> None:
    """Count one request in the current minute; refuse (429) once the minute has ``limit``."""
    if limit is None:
        return
    now = time.time() if now is None else now
    minute = int(now // 60)
    count = _incr(_key("rpm", user_id, minute), 120)
    if count > limit:
        wait = max(1, math.ceil((minute + 1) * 60 - now))
        # Two plurals (the limit's and the wait's) are two sentences; the languages join them.
        reached = ngettext(
            "You have reached your limit of %(limit)d request per minute.",
            "You have reached your limit of %(limit)d requests per minute.",
            limit,
        ) % {"limit": limit}
        retry = ngettext("Try again in %(wait)d second.", "Try again in %(wait)d seconds.", wait) % {"wait": wait}
        raise GenerationRefused(
            # Translators: two sentences in a row; a language without spaces between them drops it.
            _("%(first)s %(second)s") % {"first": reached, "second": retry},
            status=429,
            code="rate_limit_exceeded",
            retry_after=wait,
        )


class UserSlot:
    """One of a user's concurrent answers; ``release`` gives it back (once)."""

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        self._released = False
        self._with: list[ModelSlot] = []

    def holding(self, other: ModelSlot) -> UserSlot:
        """Give ``other`` back with this slot (one release for all a run holds)."""
        self._with.append(other)
        return self

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        for other in self._with:
            other.release()
        key = _key("running", self.user_id)
        try:
            if cache.decr(key) < 0:
                cache.set(key, 0, SLOT_SAFETY_SECONDS)
        except ValueError:
            pass  # expired (the safety expiry): nothing left to give back
        except Exception:
            # Redis restarting: its counters start again from nothing, so there is nothing to
            # give back; an answer must still be stored however its slot's return went.
            logger.warning("could not give back %s", key, exc_info=True)


# Answers running in this process, by model: the engine's queue is bounded here, before a
# request takes memory and an HTTP connection to the engine (in-process: each web node bounds
# its own; the engine behind several nodes has its own queue as well).
_running_by_model: dict[str, int] = {}
_running_lock = threading.Lock()


class ModelSlot:
    """One of a model's concurrent answers in this process; ``release`` gives it back (once)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._released = False

    def release(self) -> None:
        with _running_lock:
            if self._released:
                return
            self._released = True
            left = _running_by_model.get(self.model, 1) - 1
            if left > 0:
                _running_by_model[self.model] = left
            else:
                _running_by_model.pop(self.model, None)
            metrics.engine_queue.labels(self.model).set(max(left, 0))


def running_for_model(model: str) -> int:
    return _running_by_model.get(model, 0)


def model_slot(model: str) -> ModelSlot:
    """A place in ``model``'s queue, or 503 "busy, try again" once MAX_GENERATIONS_PER_MODEL
    answers of it run or wait in this process (the engine's slots, then its waiting line)."""
    with _running_lock:
        running = _running_by_model.get(model, 0)
        if running >= settings.MAX_GENERATIONS_PER_MODEL:
            raise GenerationRefused(
                _("The model %(model)s is busy with other answers. Please try again in a moment.") % {"model": model},
                status=503,
                code="engine_busy",
                retry_after=2,
            )
        _running_by_model[model] = running + 1
        metrics.engine_queue.labels(model).set(running + 1)
    return ModelSlot(model)


def user_slot(user_id: int, limit: int | None = None) -> UserSlot:
    """A slot for one more answer of this user, or 429 when ``limit`` (default
    MAX_CONCURRENT_GENERATIONS_PER_USER) are running, in any web process."""
    limit = settings.MAX_CONCURRENT_GENERATIONS_PER_USER if limit is None else limit
    key = _key("running", user_id)
    running = _incr(key, SLOT_SAFETY_SECONDS)
    try:
        cache.touch(key, SLOT_SAFETY_SECONDS)
    except Exception as exc:
        raise _counters_unreachable() from exc
    if running > limit:
        try:
            cache.decr(key)
        except Exception:  # expired (ValueError), or Redis gone meanwhile: nothing to give back
            pass
        running -= 1
        raise GenerationRefused(
            ngettext(
                "You already have %(count)d answer being generated. Wait for it to finish.",
                "You already have %(count)d answers being generated. Wait for one to finish.",
                running,
            )
            % {"count": running},
            status=429,
            code="too_many_generations",
            retry_after=1,
        )
    return UserSlot(user_id)


def running_for(user_id: int) -> int:
    """Answers of this user running now, as the shared counter says (tests, metrics)."""
    return int(cache.get(_key("running", user_id), 0))


def check_quota(*, user_id: int) -> UserSlot:
    """Every quota, cheapest refusal last so a refused request takes no slot: tokens of the day
    and month, requests this minute, then a slot among the running answers (given back by the
    run). Nothing after this may refuse, or the slot would leak until its safety expiry."""
    quota = effective_quota(user_id=user_id)
    check_tokens(user_id=user_id, quota=quota)
    count_request(user_id=user_id, limit=quota.requests_per_minute.value)
    return user_slot(user_id, quota.concurrent_answers.value)
