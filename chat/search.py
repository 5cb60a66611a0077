"""Search over the titles and message text of every conversation a person may read.

The candidates always come from ``chat.access.readable_conversations`` (the one access rule:
own, project, shared); nothing here filters by owner. On PostgreSQL the match is full-text
(``websearch_to_tsquery`` with the 'simple' configuration, served by the GIN indexes of
migration 0005), ranked with ``ts_rank`` among the newest ``CANDIDATES`` matches, then newest
first. SQLite has no such index:
there it is a case-insensitive substring match, newest first, and still bounded by ``limit``.

Snippets are cut and highlighted here in Python from the stored text, as parts of plain text
with a "hit" flag: the template puts ``<mark>`` around the hits and escapes everything, the
browser sets ``textContent``. Nothing of a person's text is ever turned into markup.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import BooleanField, F, FloatField, Func, QuerySet, TextField, Value

from .access import UserLike, readable_conversations
from .models import Conversation, Message

#: Longer queries are refused as no query at all (the form's ``maxlength`` says the same).
MAX_QUERY_CHARS = 200
MAX_LIMIT = 50
#: Deeper pages cost more on every backend; nobody reads past this many results.
MAX_OFFSET = 200
#: PostgreSQL ranks the newest this many matches (of titles, and of messages): ``ts_rank``
#: re-reads each row's text, so ranking every match of a frequent word would cost a read of
#: most of the table. Newer matches matter more in a chat history anyway.
CANDIDATES = MAX_OFFSET + MAX_LIMIT
SNIPPET_BEFORE = 60
SNIPPET_AFTER = 160

class _Vector(Func):
    """``to_tsvector('simple'::regconfig, <column>)``: exactly the expression migration 0005
    indexes (no COALESCE, unlike ``SearchVector``), or PostgreSQL could not use the index."""

    template = "to_tsvector('simple'::regconfig, %(expressions)s)"
    output_field = TextField()


class _WebQuery(Func):
    template = "websearch_to_tsquery('simple'::regconfig, %(expressions)s)"
    output_field = TextField()


class _Matches(Func):
    template = "%(expressions)s"
    arg_joiner = " @@ "
    output_field = BooleanField()


class _Rank(Func):
    function = "ts_rank"
    output_field = FloatField()


def _full_text(column: str, query: str) -> tuple[_Matches, _Rank]:
    """The match and the rank, written as expressions so Django names the column (with
    whatever alias it has inside a subquery)."""
    return (
        _Matches(_Vector(F(column)), _WebQuery(Value(query))),
        _Rank(_Vector(F(column)), _WebQuery(Value(query))),
    )


@dataclass(frozen=True)
class SnippetPart:
    text: str
    hit: bool


@dataclass(frozen=True)
class SearchResult:
    conversation_id: uuid.UUID
    title: str
    #: None when the title matched (the result opens the conversation at its current branch).
    message_id: int | None
    role: str
    author: str
    snippet: list[SnippetPart]
    updated_at: dt.datetime
    #: When the matching message was written (the conversation's last change for a title).
    created_at: dt.datetime
    rank: float

    @property
    def url(self) -> str:
        fragment = f"#m-{self.message_id}" if self.message_id is not None else ""
        return f"/c/{self.conversation_id}/{fragment}"


def clean_query(raw: str | None) -> str:
    """The query as searched: whitespace collapsed; "" (no search) if empty or too long."""
    text = " ".join((raw or "").split())
    if len(text) > MAX_QUERY_CHARS or "\x00" in text:
        return ""
    return text


def search(*, user: UserLike, query: str, limit: int = 20, offset: int = 0) -> list[SearchResult]:
    """Matching titles and messages of the conversations ``user`` may read, best first.

    Two bounded queries (titles, messages), each fetching at most ``offset + limit`` rows;
    the two lists are merged by rank, then by time.
    """
    query = clean_query(query)
    limit = max(1, min(limit, MAX_LIMIT))
    offset = max(0, min(offset, MAX_OFFSET))
    if not query:
        return []
    window = offset + limit
    postgres = connection.vendor == "postgresql"
    terms = _terms(query) if postgres else [query]
    with _index_only():
        conversations = list(title_matches(user=user, query=query)[:window])
        messages = list(message_matches(user=user, query=query)[:window])
    titles = [
        SearchResult(
            conversation_id=c.id,
            title=c.title,
            message_id=None,
            role="",
            author=c.owner.get_username(),
            snippet=snippet(c.title, terms, whole_words=postgres),
            updated_at=c.updated_at,
            created_at=c.updated_at,
            rank=float(c.rank),  # type: ignore[attr-defined]
        )
        for c in conversations
    ]
    found = [
        SearchResult(
            conversation_id=m.conversation.id,
            title=m.conversation.title,
            message_id=m.id,
            role=m.role,
            author=m.author.get_username() if m.author else "",
            snippet=snippet(m.content, terms, whole_words=postgres),
            updated_at=m.conversation.updated_at,
            created_at=m.created_at,
            rank=float(m.rank),  # type: ignore[attr-defined]
        )
        for m in messages
    ]
    results = titles + found
    results.sort(key=lambda r: (r.rank, r.created_at), reverse=True)
    return results[offset:window]


@contextmanager
def _index_only() -> Iterator[None]:
    """On PostgreSQL, keep the planner off sequential scans for these queries.

    For a frequent word (most messages match) the planner reads the whole table and computes
    ``to_tsvector`` for every row: seconds on 100,000 messages. The GIN index answers the
    same match without parsing any text (rows are only rechecked for phrases), so the cost
    grows with the number of matches, not with the text stored.
    """
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
        yield


def title_matches(*, user: UserLike, query: str) -> QuerySet[Conversation]:
    """Readable conversations whose title matches, best first (annotated with ``rank``)."""
    rows = Conversation.objects.filter(pk__in=readable_conversations(user=user).values("pk"))
    if connection.vendor == "postgresql":
        matches, rank = _full_text("title", query)
        newest = rows.filter(matches).order_by("-updated_at").values("pk")[:CANDIDATES]
        rows = Conversation.objects.filter(pk__in=newest).annotate(rank=rank).order_by("-rank", "-updated_at")
    else:
        rows = rows.filter(title__icontains=query).annotate(rank=Value(0.0, output_field=FloatField())).order_by(
            "-updated_at"
        )
    return rows.select_related("owner").only("id", "title", "updated_at", "owner__username")


def message_matches(*, user: UserLike, query: str) -> QuerySet[Message]:
    """Messages of readable conversations that match, best first (annotated with ``rank``)."""
    rows = Message.objects.filter(conversation_id__in=readable_conversations(user=user).values("pk"))
    if connection.vendor == "postgresql":
        matches, rank = _full_text("content", query)
        newest = rows.filter(matches).order_by("-id").values("pk")[:CANDIDATES]
        rows = Message.objects.filter(pk__in=newest).annotate(rank=rank).order_by("-rank", "-id")
    else:
        # Newest first along the primary key: the scan stops once enough rows matched.
        rows = rows.filter(content__icontains=query).annotate(rank=Value(0.0, output_field=FloatField())).order_by(
            "-id"
        )
    return rows.select_related("conversation", "author").only(
        "id", "role", "content", "created_at", "conversation__id", "conversation__title",
        "conversation__updated_at", "author__username",
    )


_WORD = re.compile(r"\w+")


def _terms(query: str) -> list[str]:
    """The words a web-search query looks for (not the ``-excluded`` ones, nor ``or``)."""
    terms = []
    for token in re.findall(r'-?"[^"]*"?|\S+', query):
        if token.startswith("-"):
            continue
        words = _WORD.findall(token)
        if token.lower() == "or":
            continue
        terms.extend(words)
    return terms


def snippet(text: str, terms: list[str], *, whole_words: bool) -> list[SnippetPart]:
    """A window of ``text`` around its first hit, split into plain and highlighted parts."""
    if not text:
        return []
    pattern = _pattern(terms, whole_words)
    first = pattern.search(text) if pattern else None
    start = 0
    if first is not None and first.start() > SNIPPET_BEFORE:
        start = first.start() - SNIPPET_BEFORE
        space = text.find(" ", start, first.start())
        start = space + 1 if space != -1 else start
    end = min(len(text), (first.end() if first else 0) + SNIPPET_AFTER)
    window = " ".join(text[start:end].split())
    parts: list[SnippetPart] = []
    if start > 0:
        parts.append(SnippetPart("…", False))
    position = 0
    for match in pattern.finditer(window) if pattern else ():
        if match.start() > position:
            parts.append(SnippetPart(window[position : match.start()], False))
        parts.append(SnippetPart(match.group(), True))
        position = match.end()
    if position < len(window):
        parts.append(SnippetPart(window[position:], False))
    if end < len(text):
        parts.append(SnippetPart("…", False))
    return parts


def _pattern(terms: list[str], whole_words: bool) -> re.Pattern[str] | None:
    terms = [t for t in terms if t]
    if not terms:
        return None
    alternatives = "|".join(re.escape(t) for t in sorted(set(terms), key=len, reverse=True))
    # Full-text search matches whole words ('simple': as written, in any case); the
    # substring fallback matches anywhere.
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)" if whole_words else alternatives, re.IGNORECASE)


def result_payload(result: SearchResult) -> dict[str, object]:
    """A result as the sidebar's live search receives it (the browser sets textContent)."""
    return {
        "conversation_id": str(result.conversation_id),
        "title": result.title,
        "message_id": result.message_id,
        "role": result.role,
        "author": result.author,
        "snippet": "".join(part.text for part in result.snippet),
        "parts": [{"text": part.text, "hit": part.hit} for part in result.snippet],
        "updated_at": result.updated_at.isoformat(),
        "created_at": result.created_at.isoformat(),
        "url": result.url,
    }
