"""Conversations into the platform: its own JSON export (one conversation, or the zip of all),
and ChatGPT's export (``conversations.json``, or ChatGPT's zip holding it).

Uploads come from anyone with an account, so everything is bounded before it is believed:
the upload's size (``IMPORT_MAX_BYTES``), the zip's member count, the names of its members
(no absolute paths, no ``..``), each member's real decompressed size (read with a byte cap;
the sizes in the zip's headers are only used to refuse early, never to allow), the total
decompressed size, the number of conversations and messages, and each message's length.
JSON is decoded by ``webio.json.parse_json`` (bounded depth, no NULs or lone surrogates).

A file is parsed completely into plain records first and written in one transaction after,
so a refusal at any point leaves nothing behind. Titles and messages are stored as the text
they are: markup in them is rendered escaped like everything else people type.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import IO, Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from webio.json import BadJson, parse_json

from ..models import Conversation, Message, MessageStatus, Role, TitleSource
from .conversations import clean_title
from .exports import FORMAT, VERSION

#: Members a zip may have beyond one per conversation (ChatGPT adds its own files).
EXTRA_MEMBERS = 100
#: Decompressed bytes of all members together, as a multiple of ``IMPORT_MAX_BYTES``.
TOTAL_FACTOR = 4
MAX_DEPTH = 64
_MODEL_NAME_LENGTH = 300
_READ_BLOCK = 1024 * 1024
_ROLES = {Role.USER.value, Role.ASSISTANT.value, Role.SYSTEM.value}
_STATUSES = {s.value for s in MessageStatus}
_CHATGPT_ROLES = {"user": Role.USER, "assistant": Role.ASSISTANT}
_CHATGPT_TEXT_TYPES = {"text", "multimodal_text", "code"}
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\\:]")


class ImportRefused(Exception):
    """The file was refused as a whole; ``message`` says why, for the person who sent it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class _Message:
    key: object
    parent: object | None
    role: str
    content: str
    status: str = MessageStatus.COMPLETE
    model: str = ""
    cut_off: bool = False
    created_at: dt.datetime | None = None


@dataclass
class _Conversation:
    title: str
    created_at: dt.datetime | None
    updated_at: dt.datetime | None
    #: Parents before their children.
    messages: list[_Message] = field(default_factory=list)
    current: object | None = None


@dataclass(frozen=True)
class ImportResult:
    conversation_ids: list[str]

    @property
    def count(self) -> int:
        return len(self.conversation_ids)


class _Budget:
    """What one import may still add: conversations and messages."""

    def __init__(self) -> None:
        self.conversations = 0
        self.messages = 0

    def add_conversation(self) -> int:
        self.conversations += 1
        if self.conversations > settings.IMPORT_MAX_CONVERSATIONS:
            raise ImportRefused(
                _("This file holds more than %(limit)d conversations, the most one import may add.")
                % {"limit": settings.IMPORT_MAX_CONVERSATIONS}
            )
        return self.conversations

    def add_message(self) -> None:
        self.messages += 1
        if self.messages > settings.IMPORT_MAX_MESSAGES:
            raise ImportRefused(
                _("This file holds more than %(limit)d messages, the most one import may add.")
                % {"limit": settings.IMPORT_MAX_MESSAGES}
            )


def import_file(*, owner: User, file: IO[bytes], size: int | None = None) -> ImportResult:
    """Read an uploaded export and add its conversations to ``owner``'s, all or nothing."""
    limit = settings.IMPORT_MAX_BYTES
    if size is not None and size > limit:
        raise _too_large(limit)
    head = file.read(4)
    file.seek(0)
    budget = _Budget()
    if head in (b"PK\x03\x04", b"PK\x05\x06"):
        conversations = _from_zip(file, budget)
    else:
        conversations = _from_document(_json(_read_capped(file, limit)), budget)
    if not conversations:
        raise ImportRefused(_("This file holds no conversations."))
    return _store(owner, conversations)


def _too_large(limit: int) -> ImportRefused:
    return ImportRefused(
        _("The file is too large to import (at most %(size)s).") % {"size": _size(limit)}
    )


def _size(value: int) -> str:
    return f"{value / (1024 * 1024):.0f} MiB" if value >= 1024 * 1024 else f"{value} bytes"


def _read_capped(file: IO[bytes], cap: int) -> bytes:
    """At most ``cap`` bytes, or a refusal: the stream is never trusted to end on its own."""
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = file.read(min(_READ_BLOCK, cap + 1 - total))
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > cap:
            raise _too_large(cap)
        chunks.append(chunk)


def _json(raw: bytes) -> Any:
    try:
        return parse_json(raw, max_bytes=settings.IMPORT_MAX_BYTES, max_depth=MAX_DEPTH)
    except BadJson as exc:
        raise ImportRefused(_("This file could not be read: %(reason)s") % {"reason": exc.message}) from None


# ---- Zip archives ---------------------------------------------------------------------------


def _from_zip(file: IO[bytes], budget: _Budget) -> list[_Conversation]:
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise ImportRefused(_("This zip archive is damaged and cannot be read.")) from None
    with archive:
        members = archive.infolist()
        most = settings.IMPORT_MAX_CONVERSATIONS + EXTRA_MEMBERS
        if len(members) > most:
            raise ImportRefused(
                _("This zip archive has too many files (%(count)d, at most %(limit)d).")
                % {"count": len(members), "limit": most}
            )
        for member in members:
            _check_name(member.filename)
        per_member = settings.IMPORT_MAX_BYTES
        total_limit = per_member * TOTAL_FACTOR
        # The headers can lie, so these sums only refuse early; the reads below are capped too.
        if sum(m.file_size for m in members) > total_limit:
            raise _too_much_unpacked(total_limit)
        files = {m.filename: m for m in members if not m.is_dir()}
        reader = _MemberReader(archive, per_member, total_limit)
        if "conversations.json" in files:
            return _from_document(_json(reader.read(files["conversations.json"])), budget, chatgpt_only=True)
        if "index.json" in files:
            conversations = []
            for name in sorted(files):
                if name == "index.json" or not name.endswith(".json"):
                    continue
                document = _json(reader.read(files[name]))
                if not isinstance(document, dict) or document.get("format") != FORMAT:
                    raise ImportRefused(
                        _("“%(name)s” in the archive is not a Private LLM conversation.") % {"name": name}
                    )
                conversations.append(_from_platform(document, budget))
            return conversations
    raise ImportRefused(
        _("This zip archive is neither a Private LLM export (index.json) nor a ChatGPT export (conversations.json).")
    )


def _check_name(name: str) -> None:
    """Member names must be plain relative paths: nothing absolute, no ``..``, no drive."""
    parts = name.split("/")
    if (
        not name
        or len(name) > 255
        or name.startswith("/")
        or _UNSAFE_NAME.search(name)
        or any(part in ("..", ".") for part in parts)
    ):
        raise ImportRefused(_("This zip archive contains an unsafe file name: %(name)r.") % {"name": name[:100]})


def _too_much_unpacked(limit: int) -> ImportRefused:
    return ImportRefused(
        _("This zip archive unpacks to more than %(size)s, the most an import may hold.") % {"size": _size(limit)}
    )


class _MemberReader:
    """Reads members decompressing at most ``per_member`` bytes each, ``total`` in all."""

    def __init__(self, archive: zipfile.ZipFile, per_member: int, total: int) -> None:
        self.archive = archive
        self.per_member = per_member
        self.left = total

    def read(self, member: zipfile.ZipInfo) -> bytes:
        if member.file_size > self.per_member:
            raise _member_too_large(member.filename, self.per_member)
        cap = min(self.per_member, self.left)
        try:
            with self.archive.open(member) as stream:
                data = stream.read(cap + 1)
        except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, OSError, ValueError):
            raise ImportRefused(
                _("“%(name)s” in the zip archive is damaged or encrypted.") % {"name": member.filename[:100]}
            ) from None
        if len(data) > cap:
            if cap < self.per_member:
                raise _too_much_unpacked(self.per_member * TOTAL_FACTOR)
            raise _member_too_large(member.filename, self.per_member)
        self.left -= len(data)
        return data


def _member_too_large(name: str, limit: int) -> ImportRefused:
    return ImportRefused(
        _("“%(name)s” in the zip archive unpacks to more than %(size)s.") % {"name": name[:100], "size": _size(limit)}
    )


# ---- Documents ------------------------------------------------------------------------------


def _from_document(document: Any, budget: _Budget, *, chatgpt_only: bool = False) -> list[_Conversation]:
    if isinstance(document, dict) and document.get("format") == FORMAT and not chatgpt_only:
        return [_from_platform(document, budget)]
    if isinstance(document, list):
        return [_from_chatgpt(item, budget) for item in document]
    if isinstance(document, dict) and "mapping" in document:
        return [_from_chatgpt(document, budget)]
    raise ImportRefused(
        _("This file is neither a Private LLM conversation export nor a ChatGPT export (conversations.json).")
    )


def _shape(where: str) -> ImportRefused:
    return ImportRefused(_("This file does not have the expected shape: %(where)s.") % {"where": where})


def _label(number: int, title: str) -> str:
    return _("conversation %(number)d (“%(title)s”)") % {"number": number, "title": title[:60]}


def _content(text: str, where: str) -> str:
    if len(text) > settings.MAX_MESSAGE_CHARS:
        raise ImportRefused(
            _("A message of %(where)s is too long (%(length)d characters, at most %(limit)d).")
            % {"where": where, "length": len(text), "limit": settings.MAX_MESSAGE_CHARS}
        )
    return text


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _iso(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        stamp = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return stamp if timezone.is_aware(stamp) else timezone.make_aware(stamp, dt.UTC)


def _epoch(value: Any) -> dt.datetime | None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return None
    if not 0 < value < 32_503_680_000:  # before the year 3000
        return None
    return dt.datetime.fromtimestamp(value, tz=dt.UTC)


def _from_platform(document: dict[str, Any], budget: _Budget) -> _Conversation:
    number = budget.add_conversation()
    if document.get("version") != VERSION:
        raise ImportRefused(
            _("This export's version (%(version)s) is not one this platform reads.")
            % {"version": str(document.get("version"))[:20]}
        )
    title, messages = document.get("title", ""), document.get("messages")
    if not isinstance(title, str):
        raise _shape(_("the title of conversation %(number)d is not text") % {"number": number})
    where = _label(number, title)
    if not isinstance(messages, list):
        raise _shape(_("%(where)s has no list of messages") % {"where": where})
    records: list[_Message] = []
    for item in messages:
        budget.add_message()
        if not isinstance(item, dict) or not _is_int(item.get("id")):
            raise _shape(_("a message of %(where)s has no numeric id") % {"where": where})
        parent, role, content = item.get("parent"), item.get("role"), item.get("content", "")
        status, model, cut_off = item.get("status", MessageStatus.COMPLETE), item.get("model", ""), item.get("cut_off", False)
        if (
            not (parent is None or _is_int(parent))
            or role not in _ROLES
            or not isinstance(content, str)
            or status not in _STATUSES
            or not isinstance(model, str)
            or not isinstance(cut_off, bool)
        ):
            raise _shape(_("message %(id)d of %(where)s") % {"id": item["id"], "where": where})
        records.append(
            _Message(
                key=item["id"],
                parent=parent,
                role=role,
                content=_content(content, where),
                # An answer that was being written when exported will never finish here.
                status=MessageStatus.STOPPED if status == MessageStatus.STREAMING else status,
                model=model[:_MODEL_NAME_LENGTH],
                cut_off=cut_off,
                created_at=_iso(item.get("created_at")),
            )
        )
    records.sort(key=lambda m: int(str(m.key)))  # the export's order: ids as they were given out
    ordered = _tree_order(records, where)
    current = document.get("current_leaf")
    keys = {m.key for m in ordered}
    created = _iso(document.get("created_at"))
    stamps = [m.created_at for m in ordered if m.created_at]
    return _Conversation(
        title=title,
        created_at=created,
        updated_at=max(stamps) if stamps else created,
        messages=ordered,
        current=current if current in keys else (ordered[-1].key if ordered else None),
    )


def _tree_order(records: list[_Message], where: str) -> list[_Message]:
    """Parents before children, otherwise in the order given (siblings keep theirs);
    refused if ids repeat or parents are missing or circular."""
    by_key: dict[object, int] = {}
    for index, record in enumerate(records):
        if record.key in by_key:
            raise _shape(_("message ids repeat in %(where)s") % {"where": where})
        by_key[record.key] = index
    children: dict[object, list[int]] = {}
    for index, record in enumerate(records):
        if record.parent is not None and record.parent not in by_key:
            raise _shape(_("a message of %(where)s answers a message that is not there") % {"where": where})
        children.setdefault(record.parent, []).append(index)
    ordered: list[_Message] = []
    ready = list(children.get(None, []))
    heapq.heapify(ready)
    while ready:
        record = records[heapq.heappop(ready)]
        ordered.append(record)
        for child in children.get(record.key, []):
            heapq.heappush(ready, child)
    if len(ordered) != len(records):
        raise _shape(_("the messages of %(where)s do not form a tree") % {"where": where})
    return ordered


def _from_chatgpt(item: Any, budget: _Budget) -> _Conversation:
    number = budget.add_conversation()
    if not isinstance(item, dict) or not isinstance(item.get("mapping"), dict):
        raise _shape(_("ChatGPT conversation %(number)d has no mapping of messages") % {"number": number})
    title = item.get("title") or ""
    if not isinstance(title, str):
        raise _shape(_("the title of ChatGPT conversation %(number)d is not text") % {"number": number})
    where = _label(number, title)
    mapping: dict[str, Any] = item["mapping"]
    children: dict[str | None, list[str]] = {}
    for key, node in mapping.items():
        if not isinstance(node, dict):
            raise _shape(_("a node of %(where)s is not an object") % {"where": where})
        parent = node.get("parent")
        if parent is not None and not isinstance(parent, str):
            raise _shape(_("a node of %(where)s has a parent that is not an id") % {"where": where})
        # A parent that is not in the mapping makes a root (ChatGPT's own root has none).
        children.setdefault(parent if parent in mapping else None, []).append(key)
    messages: list[_Message] = []
    # Each node's nearest kept ancestor: skipped nodes (system, tool, hidden, empty) hand
    # their children up to it, so branches below them survive.
    kept_above: dict[str, str | None] = {}
    pending: list[tuple[str, str | None]] = [(key, None) for key in children.get(None, [])]
    while pending:
        key, above = pending.pop()
        record = _chatgpt_message(key, mapping[key], above, where)
        if record is not None:
            budget.add_message()
            messages.append(record)
        kept_above[key] = key if record is not None else above
        # Reversed onto a stack: the older branch is written first, so it keeps the lower id.
        below = sorted(children.get(key, []), key=lambda k: _node_time(mapping[k]))
        pending.extend((child, kept_above[key]) for child in reversed(below))
    current_node = item.get("current_node")
    current: object | None = kept_above.get(current_node) if isinstance(current_node, str) else None
    if current is None and messages:
        current = messages[-1].key
    stamps = [m.created_at for m in messages if m.created_at]
    return _Conversation(
        title=title,
        created_at=_epoch(item.get("create_time")) or (min(stamps) if stamps else None),
        updated_at=_epoch(item.get("update_time")) or (max(stamps) if stamps else None),
        messages=messages,
        current=current,
    )


def _node_time(node: dict[str, Any]) -> float:
    message = node.get("message")
    stamp = message.get("create_time") if isinstance(message, dict) else None
    return float(stamp) if isinstance(stamp, int | float) and math.isfinite(stamp) else 0.0


def _chatgpt_message(key: str, node: dict[str, Any], parent: str | None, where: str) -> _Message | None:
    """The node as a message, or None for what a conversation does not show."""
    message = node.get("message")
    if not isinstance(message, dict):
        return None
    author, content, metadata = message.get("author"), message.get("content"), message.get("metadata")
    role = _CHATGPT_ROLES.get(str(author.get("role"))) if isinstance(author, dict) else None
    metadata = metadata if isinstance(metadata, dict) else {}
    if (
        role is None
        or not isinstance(content, dict)
        or content.get("content_type") not in _CHATGPT_TEXT_TYPES
        or message.get("recipient", "all") != "all"  # a call to a tool, not words to the person
        or metadata.get("is_visually_hidden_from_conversation")
    ):
        return None
    if content.get("content_type") == "code":
        text = content.get("text")
        text = text if isinstance(text, str) else ""
    else:
        parts = content.get("parts")
        text = "\n".join(p for p in parts if isinstance(p, str)) if isinstance(parts, list) else ""
    if not text.strip():
        return None
    model = metadata.get("model_slug")
    finish = metadata.get("finish_details")
    return _Message(
        key=key,
        parent=parent,
        role=role,
        content=_content(text, where),
        model=model[:_MODEL_NAME_LENGTH] if isinstance(model, str) else "",
        cut_off=isinstance(finish, dict) and finish.get("type") == "max_tokens",
        created_at=_epoch(message.get("create_time")),
    )


# ---- Writing --------------------------------------------------------------------------------


def _store(owner: User, parsed: list[_Conversation]) -> ImportResult:
    """All conversations and messages in one transaction, a few statements per thousand rows.

    Rows are inserted first and linked after (parents, the current leaf, the original
    times), so a conversation a thousand messages deep costs no more than a flat one.
    """
    now = timezone.now()
    with transaction.atomic():
        conversations = [
            Conversation(
                owner=owner,
                title=clean_title(p.title),
                title_source=TitleSource.USER if clean_title(p.title) else TitleSource.AUTO,
            )
            for p in parsed
        ]
        Conversation.objects.bulk_create(conversations, batch_size=500)
        rows: list[Message] = []
        for conversation, record in zip(conversations, parsed, strict=True):
            for item in record.messages:
                rows.append(
                    Message(
                        conversation=conversation,
                        author=owner if item.role != Role.SYSTEM else None,
                        role=item.role,
                        content=item.content,
                        status=item.status,
                        model_name=item.model,
                        cut_off=item.cut_off,
                    )
                )
        Message.objects.bulk_create(rows, batch_size=1000)
        position = 0
        for conversation, record in zip(conversations, parsed, strict=True):
            ids: dict[object, int] = {}
            for item in record.messages:
                row = rows[position]
                position += 1
                ids[item.key] = row.pk
                row.parent_id = ids[item.parent] if item.parent is not None else None
                row.created_at = item.created_at or now
            conversation.current_leaf_id = ids.get(record.current) if record.current is not None else None
            conversation.created_at = record.created_at or now
            conversation.updated_at = record.updated_at or conversation.created_at
        Message.objects.bulk_update(rows, ["parent", "created_at"], batch_size=1000)
        Conversation.objects.bulk_update(conversations, ["current_leaf", "created_at", "updated_at"], batch_size=500)
    return ImportResult(conversation_ids=[str(c.id) for c in conversations])
