"""Conversation pages, the sidebar and search at scale: server time and SQL queries.

    python -m bench.conversations [--messages 100000] [--conversations 10000] [--repeat 40]

Requests go through Django's test client (the whole middleware stack, views and templates, no
network) against a real PostgreSQL database: a throwaway one named ``bench_conversations``
on 127.0.0.1:5432 (created and dropped here), or the one DATABASE_URL names (kept). The data
is made with ``bulk_create``: one person with ``--conversations`` conversations, one of them
1,000 messages long, ``--messages`` messages in all; a colleague with a fifth as many, some
in a project the person belongs to and some shared with them, so search has rows to skip.

Targets (issue 8): a 1,000-message conversation opens in ≤ 150 ms, the sidebar of 10,000
conversations in ≤ 100 ms, search over 100,000 messages in ≤ 200 ms p95.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import common

BENCH_DB = "bench_conversations"
ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
LONG = 1000


@dataclass
class Row:
    label: str
    samples: list[float]
    queries: int
    target_ms: float | None

    def quantile(self, q: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(os.environ.get("BENCH_ADMIN_URL", ADMIN_URL), autocommit=True) as conn:
        conn.execute(sql)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=40, help="timed requests per row (after 3 warm-up ones)")
    parser.add_argument("--keep", action="store_true", help=f"keep the {BENCH_DB} database afterwards")
    args = parser.parse_args()
    own_database = not os.environ.get("DATABASE_URL")
    if own_database:
        _admin(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        _admin(f"CREATE DATABASE {BENCH_DB}")
        os.environ["DATABASE_URL"] = ADMIN_URL.rsplit("/", 1)[0] + "/" + BENCH_DB
    os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="platform-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform.settings")
    os.environ.setdefault("CHAT_AUTO_TITLE", "false")
    sys.path.insert(0, str(common.ROOT))
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.test.utils import override_settings, setup_test_environment

        call_command("migrate", verbosity=0)
        setup_test_environment()  # the test client's host, and template rendering as in tests
        plain_static = {"staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
        from django.conf import settings

        with override_settings(STORAGES={**settings.STORAGES, **plain_static}):
            run(args)
    finally:
        if own_database and not args.keep:
            from django.db import connections

            for alias in connections:
                connections[alias].close()
                getattr(connections[alias], "close_pool", lambda: None)()
            _admin(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


def run(args: argparse.Namespace) -> None:
    from django.db import connection

    started = time.perf_counter()
    data = build(args.conversations, args.messages)
    built = time.perf_counter() - started
    rows = measure(data, args.repeat)
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()
    print()
    print(f"Machine: {common.machine()}")
    print(
        f"Database: {connection.vendor} {version[0] if version else ''}; {data['conversations']:,} conversations and "
        f"{data['messages']:,} messages of the bench user (+ {data['other_messages']:,} of a colleague), "
        f"built in {built:.0f} s; {args.repeat} timed requests per row"
    )
    print()
    print("| request | median ms | p95 ms | SQL queries | target |")
    print("|---|---|---|---|---|")
    for row in rows:
        target = f"≤ {row.target_ms:.0f} ms" if row.target_ms else ""
        print(f"| {row.label} | {row.quantile(0.5):.1f} | {row.quantile(0.95):.1f} | {row.queries} | {target} |")


# ---- Data -----------------------------------------------------------------------------------


def _vocabulary(rng: random.Random) -> list[str]:
    common_words = (
        "the a of and to in is it that for on with as this was be at by not or are from but have an they which one "
        "you all were her she there would their we him been has when who will more no if out so said what up its "
        "about into than them can only other new some could time these two may then do first any my now such like"
    ).split()
    made = {"".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(4, 10))) for _ in range(20_000)}
    return common_words + sorted(made)


def _text(rng: random.Random, words: list[str], weights: list[float], low: int, high: int) -> str:
    return " ".join(rng.choices(words, cum_weights=weights, k=rng.randint(low, high))).capitalize() + "."


def build(conversations: int, messages: int) -> dict[str, Any]:
    """The bench data, with bulk_create; messages of each conversation chained into a branch."""
    import datetime as dt
    from itertools import accumulate

    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from chat.models import Conversation, ConversationShare, Message, Role
    from projects.models import Membership, Project, ProjectRole

    rng = random.Random(8)
    words = _vocabulary(rng)
    weights = list(accumulate(1 / (rank + 1) for rank in range(len(words))))  # Zipf-like frequencies
    User = get_user_model()
    user = User.objects.create_user(username="bench-user", password="x")
    colleague = User.objects.create_user(username="bench-colleague", password="x")
    now = timezone.now()

    def people(owner: Any, count: int, prefix: str) -> list[Conversation]:
        rows = [
            Conversation(owner=owner, title=f"{prefix} {_text(rng, words, weights, 2, 6)}"[:200])
            for _ in range(count)
        ]
        Conversation.objects.bulk_create(rows, batch_size=2000)
        return rows

    with transaction.atomic():
        mine = people(user, conversations, "Chat")
        theirs = people(colleague, max(1, conversations // 5), "Notes")
        long_one = mine[0]
        plan: list[tuple[Conversation, int]] = [(long_one, LONG)]
        rest = max(0, messages - LONG)
        per, extra = divmod(rest, max(1, len(mine) - 1))
        plan += [(c, per + (1 if i < extra else 0)) for i, c in enumerate(mine[1:])]
        plan += [(c, max(1, per)) for c in theirs]
        batch: list[Message] = []
        total = {"mine": 0, "theirs": 0}
        for conversation, count in plan:
            for i in range(count):
                role = Role.USER if i % 2 == 0 else Role.ASSISTANT
                size = (5, 40) if role == Role.USER else (20, 120)
                batch.append(
                    Message(
                        conversation=conversation,
                        role=role,
                        author_id=conversation.owner_id,
                        content=_text(rng, words, weights, *size),
                        model_name="" if role == Role.USER else "smollm2:latest",
                    )
                )
                total["mine" if conversation.owner_id == user.pk else "theirs"] += 1
            if len(batch) >= 5000:
                Message.objects.bulk_create(batch)
                batch = []
        Message.objects.bulk_create(batch)
        with connection.cursor() as cursor:
            # Chain each conversation's messages into one branch, point it at its last one,
            # and spread the conversations over the past year (the sidebar's order).
            cursor.execute(
                "UPDATE chat_message m SET parent_id = p.prev FROM (SELECT id, LAG(id) OVER "
                "(PARTITION BY conversation_id ORDER BY id) AS prev FROM chat_message) p "
                "WHERE m.id = p.id AND p.prev IS NOT NULL"
            )
            cursor.execute(
                "UPDATE chat_conversation c SET current_leaf_id = l.leaf FROM (SELECT conversation_id, MAX(id) AS leaf "
                "FROM chat_message GROUP BY conversation_id) l WHERE c.id = l.conversation_id"
            )
        for index, conversation in enumerate(mine + theirs):
            conversation.updated_at = now - dt.timedelta(minutes=index * 37 % 525_600)
        Conversation.objects.bulk_update(mine + theirs, ["updated_at"], batch_size=2000)
        Conversation.objects.filter(pk=long_one.pk).update(updated_at=now)
        project = Project.objects.create(name="Bench project", created_by=colleague)
        Membership.objects.bulk_create(
            [Membership(project=project, user=colleague, role=ProjectRole.OWNER),
             Membership(project=project, user=user, role=ProjectRole.VIEWER)]
        )
        Conversation.objects.filter(pk__in=[c.pk for c in theirs[: len(theirs) // 4]]).update(project=project)
        ConversationShare.objects.bulk_create(
            [ConversationShare(conversation=c, user=user, shared_by=colleague) for c in theirs[-50:]]
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    # Search words: one rare, one of middling frequency, a frequent one, and two together.
    counts: dict[str, int] = {}
    for text in Message.objects.filter(conversation__owner=user).values_list("content", flat=True)[:20_000]:
        for word in set(text.lower().rstrip(".").split()):
            counts[word] = counts.get(word, 0) + 1
    made = sorted((n, w) for w, n in counts.items() if len(w) >= 4 and w not in words[:80])
    rare, middling = made[len(made) // 10][1], made[len(made) * 9 // 10][1]
    return {
        "user": user,
        "long": long_one,
        "conversations": len(mine),
        "messages": total["mine"],
        "other_messages": total["theirs"],
        "queries": {
            "rare": rare,
            "middling": middling,
            "frequent": "which",
            "most frequent": "the",
            "two words": f"which {middling}",
            "not found": "zzzzzzzzzz",
        },
    }


# ---- Measuring ------------------------------------------------------------------------------


def _timed(label: str, call: Callable[[], Any], repeat: int, target_ms: float | None) -> Row:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):
        call()
    with CaptureQueriesContext(connection) as captured:
        call()
    # Counted now: every request starts by clearing the connection's query log.
    queries = len(captured.captured_queries)
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    print(f"{label}: {statistics.median(samples) * 1000:.1f} ms", flush=True)
    return Row(label, samples, queries, target_ms)


def measure(data: dict[str, Any], repeat: int) -> list[Row]:
    from django.test import Client

    client = Client()
    client.force_login(data["user"])

    def get(url: str, **params: str) -> Callable[[], Any]:
        def call() -> Any:
            response = client.get(url, params, HTTP_ACCEPT="text/html")
            assert response.status_code == 200, (url, response.status_code)
            return response

        return call

    rows = [
        _timed(f"GET /c/<id>/ ({LONG:,} messages)", get(f"/c/{data['long'].id}/"), repeat, 150),
        _timed(f"GET / (chat page, sidebar of {data['conversations']:,})", get("/"), repeat, 100),
        _timed(f"GET /c/list/ (sidebar of {data['conversations']:,})", get("/c/list/"), repeat, 100),
    ]
    for name, query in data["queries"].items():
        hits = len(client.get("/search.json", {"q": query}).json()["results"])
        rows.append(_timed(f"GET /search.json, {name} word(s) ({hits} shown)", get("/search.json", q=query), repeat, 200))
    rows.append(_timed("GET /search/ page, middling word", get("/search/", q=data["queries"]["middling"]), repeat, 200))
    return rows


if __name__ == "__main__":
    main()
