"""Automatic titles: after a conversation's first answer, the model names it in the background.

It runs after the answer's "done" (never delaying it), through the same generation run as
every answer (so it is counted in usage and bounded by the user's concurrent-answer slots),
and is stored only if nobody renamed the conversation meanwhile. Any failure keeps the
placeholder title: a title is never worth an error message.
"""

from __future__ import annotations

import asyncio
import logging
import re

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model

from accounts.models import UsageOutcome, UsageSource
from generation.run import GenerationRefused, GenerationRun, outcome_of, prepare

from .models import Message, Role
from .services import conversation_title_auto

logger = logging.getLogger(__name__)

TASKS: set[asyncio.Task[None]] = set()

_INSTRUCTION = (
    "Write a short title (at most six words) for the conversation below. "
    "Answer with the title only, no quotes and no punctuation at the end."
)
_EXCERPT = 1500


def _prepare(conversation_id: str, user_id: int, model_name: str) -> GenerationRun | None:
    first = list(
        Message.objects.filter(conversation_id=conversation_id).order_by("id").values_list("role", "content")[:2]
    )
    if len(first) < 2 or first[0][0] != Role.USER:
        return None
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return None
    question, answer = first[0][1][:_EXCERPT], first[1][1][:_EXCERPT]
    return prepare(
        user=user,
        model=model_name,
        interface=UsageSource.WEB,
        messages=[
            {"role": "system", "content": _INSTRUCTION},
            {"role": "user", "content": f"User: {question}\n\nAssistant: {answer}"},
        ],
        requested={"max_tokens": 16, "temperature": 0.2},
    )


def tidy(text: str) -> str:
    """The model's answer as a title: its first line, without quotes, labels or a final dot."""
    line = next((part for part in text.strip().splitlines() if part.strip()), "")
    line = re.sub(r"^(title\s*:\s*)", "", line.strip(), flags=re.IGNORECASE)
    line = line.strip(" \"'“”‘’*#`").rstrip(".:;,")
    return " ".join(line.split())[:80]


async def auto_title(*, conversation_id: str, user_id: int, model_name: str) -> str:
    """Generate and store a title; returns it ("" when none was stored)."""
    try:
        run = await database_sync_to_async(_prepare)(conversation_id, user_id, model_name)
    except GenerationRefused:
        return ""  # the model went away or the user is busy: keep the placeholder
    if run is None:
        return ""
    parts: list[str] = []
    error: BaseException | None = None
    try:
        async for text in run.texts():
            parts.append(text)
    except BaseException as exc:
        error = exc
        if not isinstance(exc, Exception):
            raise
    finally:
        await run.finish(outcome_of(error) if error else UsageOutcome.COMPLETE)
    title = tidy("".join(parts))
    if error is not None or not title:
        return ""
    stored = await database_sync_to_async(conversation_title_auto)(conversation_id=conversation_id, title=title)
    return title if stored else ""


def start_auto_title(*, conversation_id: str, user_id: int, model_name: str) -> None:
    if not settings.CHAT_AUTO_TITLE:
        return

    async def guarded() -> None:
        try:
            await auto_title(conversation_id=conversation_id, user_id=user_id, model_name=model_name)
        except Exception:
            logger.exception("automatic title for %s failed", conversation_id)

    task = asyncio.get_running_loop().create_task(guarded(), name=f"title-{conversation_id}")
    TASKS.add(task)
    task.add_done_callback(TASKS.discard)
