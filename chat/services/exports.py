"""Conversations out of the platform: one as Markdown or JSON, all of one's own as a zip.

The JSON is the platform's own format (``private-llm.conversation``, version 1), the whole
tree with every branch, and is what ``chat.services.imports`` reads back. Files are written in
pieces to a spooled temporary file (memory up to ``SPOOL_BYTES``, then disk): a long
conversation, or ten thousand of them, is never held in memory as one string.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from django.utils.text import slugify

from .. import tree
from ..access import UserLike, owned_conversations
from ..models import Conversation, Message, Role

FORMAT = "private-llm.conversation"
VERSION = 1
INDEX_FORMAT = "private-llm.export"
SPOOL_BYTES = 8 * 1024 * 1024
#: Conversations whose messages are fetched together for the zip (two queries per batch).
BATCH = 100
_MESSAGES_PER_READ = 500
_ROLE_LABELS = dict(Role.choices)


def export_filename(conversation: Conversation, extension: str) -> str:
    """A name safe on every file system and in a header: ASCII slug plus a short id."""
    slug = slugify(conversation.title)[:60].strip("-") or "conversation"
    return f"{slug}-{conversation.id.hex[:8]}.{extension}"


def _stamp(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def message_record(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "parent": message.parent_id,
        "role": message.role,
        "content": message.content,
        "author": message.author.get_username() if message.author_id and message.author else None,
        "status": message.status,
        "model": message.model_name,
        "cut_off": message.cut_off,
        "created_at": _stamp(message.created_at),
    }


def _header(conversation: Conversation) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "id": str(conversation.id),
        "title": conversation.title,
        "created_at": _stamp(conversation.created_at),
        "project": conversation.project.name if conversation.project_id and conversation.project else None,
        "current_leaf": conversation.current_leaf_id,
    }


def _json_chunks(conversation: Conversation, messages: Iterable[Message]) -> Iterator[str]:
    """The conversation as JSON text, one message at a time."""
    head = json.dumps(_header(conversation), ensure_ascii=False)
    yield head[:-1] + ', "messages": ['
    for index, message in enumerate(messages):
        yield ("," if index else "") + "\n  " + json.dumps(message_record(message), ensure_ascii=False)
    yield "\n]}\n"


def _all_messages(conversation: Conversation) -> Iterator[Message]:
    return (
        Message.objects.filter(conversation=conversation)
        .select_related("author")
        .order_by("id")
        .iterator(chunk_size=_MESSAGES_PER_READ)
    )


def _spool() -> IO[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (the response closes it)


def conversation_json(*, conversation: Conversation) -> IO[bytes]:
    """The whole tree as the platform's JSON, in a file positioned at its start."""
    out = _spool()
    for chunk in _json_chunks(conversation, _all_messages(conversation)):
        out.write(chunk.encode())
    out.seek(0)
    return out


def conversation_markdown(*, conversation: Conversation) -> IO[bytes]:
    """The branch the conversation shows, as Markdown: the title, then each message."""
    out = _spool()
    title = conversation.title or str(conversation.id)
    out.write(f"# {title}\n\n".encode())
    out.write(f"_{_when(conversation.created_at)}_\n".encode())
    for message in tree.thread(conversation).path:
        who = str(_ROLE_LABELS.get(message.role, message.role))
        details = []
        if message.author_id and message.author:
            details.append(message.author.get_username())
        if message.role == Role.ASSISTANT and message.model_name:
            details.append(message.model_name)
        heading = who + (f" ({', '.join(details)})" if details else "")
        out.write(f"\n## {heading} · {_when(message.created_at)}\n\n".encode())
        out.write(message.content.encode())
        out.write(b"\n")
    out.seek(0)
    return out


def _when(value: dt.datetime) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M %Z")


def export_all_zip(*, user: UserLike) -> tuple[IO[bytes], int]:
    """All of ``user``'s own conversations as a zip (one JSON each, and ``index.json``).

    Conversations are read ``BATCH`` at a time with their messages prefetched per batch, so
    memory holds one batch, whatever the total. Returns the file (at its start) and the count.
    """
    out = _spool()
    with zipfile.ZipFile(out, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
        count = write_conversations(archive, user=user)
    out.seek(0)
    return out, count


def write_conversations(archive: zipfile.ZipFile, *, user: UserLike, folder: str = "") -> int:
    """Write ``user``'s own conversations into ``archive`` (under ``folder``), with an index."""
    index: list[dict[str, Any]] = []
    conversations: QuerySet[Conversation] = (
        owned_conversations(user=user)
        .select_related("project")
        .prefetch_related(Prefetch("messages", queryset=Message.objects.select_related("author").order_by("id")))
        .order_by("created_at", "id")
    )
    for conversation in conversations.iterator(chunk_size=BATCH):
        name = f"{conversation.id}.json"
        messages = list(conversation.messages.all())
        with archive.open(folder + name, mode="w", force_zip64=True) as member:
            for chunk in _json_chunks(conversation, messages):
                member.write(chunk.encode())
        index.append(
            {
                "file": name,
                "id": str(conversation.id),
                "title": conversation.title,
                "created_at": _stamp(conversation.created_at),
                "updated_at": _stamp(conversation.updated_at),
                "messages": len(messages),
            }
        )
    archive.writestr(
        folder + "index.json",
        json.dumps(
            {
                "format": INDEX_FORMAT,
                "version": VERSION,
                "exported_at": timezone.now().isoformat(),
                "conversations": index,
            },
            ensure_ascii=False,
            indent=1,
        ),
    )
    return len(index)
