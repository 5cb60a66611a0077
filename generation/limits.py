"""Bounds on one generation request, so that no request can make the process do unbounded
work or starve other users: messages per request, prompt bytes, answers running at once per
user. The engine calls per request are bounded in ``inference.prompting`` (context fit)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from inference.engines.base import ChatMessage
from inference.prompting import text_of


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


class UserSlot:
    """One of a user's concurrent answers; ``release`` gives it back (once)."""

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        self._released = False

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        with _lock:
            remaining = _running.get(self.user_id, 1) - 1
            if remaining > 0:
                _running[self.user_id] = remaining
            else:
                _running.pop(self.user_id, None)


# Answers running in this web process, per user. Taken from sync code (the database thread)
# and given back from the event loop, hence the lock. Per process: with several web nodes a
# user may run this many answers on each (the organisation's quotas count across nodes).
_running: dict[int, int] = {}
_lock = threading.Lock()


def user_slot(user_id: int) -> UserSlot:
    """A slot for one more answer of this user, or 429 when they have too many running."""
    limit = settings.MAX_CONCURRENT_GENERATIONS_PER_USER
    with _lock:
        running = _running.get(user_id, 0)
        if running >= limit:
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
        _running[user_id] = running + 1
    return UserSlot(user_id)


def running_for(user_id: int) -> int:
    """Answers of this user running in this process now (tests, metrics)."""
    with _lock:
        return _running.get(user_id, 0)
