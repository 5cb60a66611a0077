"""The audit log as CSV, streamed: millions of rows never sit in memory at once."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterable

from asgiref.sync import sync_to_async
from django.db.models import QuerySet

from .models import AuditEntry

HEADER = ["time", "actor", "action", "target", "detail", "address"]
BATCH = 2000
# One download stops here (the filters narrow it); the last line says so.
MAX_ROWS = 1_000_000
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: str) -> str:
    """Make a cell that a spreadsheet would read as a formula plain text (a leading ``'``)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def entry_row(entry: AuditEntry) -> list[str]:
    detail = json.dumps(entry.detail, ensure_ascii=False, sort_keys=True) if entry.detail else ""
    cells = [entry.created_at.isoformat(), entry.actor_name, entry.action, entry.target, detail, entry.address]
    return [neutralise(cell) for cell in cells]


def _lines(rows: Iterable[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()


def _batch(entries: QuerySet[AuditEntry], before: int | None, size: int) -> list[AuditEntry]:
    if before is not None:
        entries = entries.filter(id__lt=before)
    return list(entries.order_by("-id")[:size])


async def csv_chunks(entries: QuerySet[AuditEntry], *, max_rows: int = MAX_ROWS) -> AsyncIterator[bytes]:
    """The entries as CSV lines, newest first, ``BATCH`` rows per query (keyset on id).

    Async, because a sync iterator would be read whole into memory under ASGI. No query
    stays open between batches, so a slow client holds no database cursor.
    """
    yield _lines([HEADER])
    sent, before = 0, None
    while sent < max_rows:
        rows = await sync_to_async(_batch)(entries, before, min(BATCH, max_rows - sent))
        if not rows:
            return
        yield _lines(entry_row(entry) for entry in rows)
        sent += len(rows)
        before = rows[-1].pk
    if await sync_to_async(_batch)(entries, before, 1):
        yield _lines([[f"# stopped after {max_rows} rows: narrow the filters for the rest"]])
