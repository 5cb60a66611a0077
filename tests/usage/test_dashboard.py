"""The usage dashboard (/admin/usage/) and its CSV export: staff only, figures per user, group,
model, project and interface from the rollups (past days) plus today's raw records, and a CSV
that spreadsheets cannot run as formulas."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import AbstractUser, Group
from django.test import Client
from django.utils import timezone

from accounts.models import UsageSource
from projects.services import project_create
from tests.conftest import make_user
from tests.quotas.helpers import seed_usage
from usage.services import usage_rollup_range

pytestmark = pytest.mark.django_db


def _client(user: AbstractUser) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def seeded(alice: AbstractUser, bob: AbstractUser) -> dict[str, object]:
    """Two past days (rolled up) and today (live): alice in two groups, bob in one."""
    now = timezone.now()
    research, sales = Group.objects.create(name="research"), Group.objects.create(name="sales")
    alice.groups.add(research, sales)
    bob.groups.add(sales)
    project = project_create(creator=alice, name="Launch")
    seed_usage(alice, tokens=1_000, at=now - timedelta(days=2), model="llama3:8b", project_id=project.id)
    seed_usage(alice, tokens=500, at=now - timedelta(days=1), model="smollm2:135m", source=UsageSource.OPENAI)
    seed_usage(bob, tokens=300, at=now - timedelta(days=1), model="smollm2:135m", source=UsageSource.OLLAMA)
    seed_usage(bob, tokens=40, at=now - timedelta(minutes=1), model="smollm2:135m")  # today: read live
    today = timezone.localdate()
    usage_rollup_range(start=today - timedelta(days=3), end=today - timedelta(days=1))
    return {"project": project}


def _rows(response: object, key: str = "rows") -> list[tuple[str, int, int]]:
    rows = response.context[key]  # type: ignore[attr-defined]
    return [(r.label, r.totals.requests, r.totals.tokens) for r in rows]


def test_the_dashboard_splits_usage_per_dimension(admin_user: AbstractUser, seeded: dict[str, object]) -> None:
    client = _client(admin_user)
    by_user = client.get("/admin/usage/")
    assert by_user.status_code == 200
    assert _rows(by_user) == [("alice", 2, 1_500), ("bob", 2, 340)]
    assert by_user.context["total"].tokens == 1_840
    assert _rows(by_user, "top_models") == [("llama3:8b", 1, 1_000), ("smollm2:135m", 3, 840)]
    # Alice is in both groups and counts in each.
    assert _rows(client.get("/admin/usage/", {"by": "group"})) == [("sales", 4, 1_840), ("research", 2, 1_500)]
    assert _rows(client.get("/admin/usage/", {"by": "project"})) == [("Launch", 1, 1_000), ("(no project)", 3, 840)]
    assert _rows(client.get("/admin/usage/", {"by": "source"})) == [
        ("Web", 2, 1_040), ("OpenAI API", 1, 500), ("Ollama API", 1, 300)
    ]


def test_the_chart_has_one_point_per_day_and_a_line_per_top_value(admin_user: AbstractUser, seeded: dict[str, object]) -> None:
    today = timezone.localdate()
    response = _client(admin_user).get(
        "/admin/usage/", {"start": (today - timedelta(days=2)).isoformat(), "end": today.isoformat(), "by": "user"}
    )
    chart = response.context["chart"]
    assert chart["labels"] == ["All", "alice", "bob"]
    assert chart["tokens"] == [[1_000, 800, 40], [1_000, 500, 0], [0, 300, 40]]
    assert chart["requests"] == [[1, 2, 1], [1, 1, 0], [0, 1, 1]]
    assert len(chart["x"]) == 3
    assert 'id="usage-chart-data"' in response.content.decode()
    assert "vendor/uplot/uPlot.iife.min.js" in response.content.decode()


def test_a_range_outside_the_data_is_empty_and_a_bad_range_falls_back(admin_user: AbstractUser, seeded: dict[str, object]) -> None:
    client = _client(admin_user)
    empty = client.get("/admin/usage/", {"start": "2020-01-01", "end": "2020-01-31"})
    assert _rows(empty) == []
    assert "No usage in this period." in empty.content.decode()
    backwards = client.get("/admin/usage/", {"start": "2020-02-01", "end": "2020-01-01"})
    assert backwards.status_code == 200
    assert "The start date is after the end date." in backwards.content.decode()
    assert backwards.context["range"].end == timezone.localdate()
    too_long = client.get("/admin/usage/", {"start": "2020-01-01", "end": "2022-01-01"})
    assert "Choose at most 366 days." in too_long.content.decode()
    assert client.get("/admin/usage/export.csv", {"start": "2020-01-01", "end": "2022-01-01"}).status_code == 400


@pytest.mark.parametrize("path", ["/admin/usage/", "/admin/usage/export.csv"])
def test_a_non_admin_gets_404(alice: AbstractUser, path: str) -> None:
    assert _client(alice).get(path).status_code == 404
    anonymous = Client().get(path)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/")


def test_the_csv_neutralises_formulas(admin_user: AbstractUser) -> None:
    names = ["=HYPERLINK(\"http://evil\")", "+1+1", "-2", "@SUM(A1)"]
    for n, name in enumerate(names):
        user = make_user(name)
        seed_usage(user, tokens=10 + n, model=f"={name}" if n == 0 else "plain")
    response = _client(admin_user).get("/admin/usage/export.csv", {"by": "user"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="usage-user-')
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))  # type: ignore[attr-defined]
    assert rows[0] == ["day", "user", "requests", "prompt_tokens", "completion_tokens"]
    assert sorted(r[1] for r in rows[1:]) == sorted("'" + name for name in names)
    assert all(r[0] == timezone.localdate().isoformat() for r in rows[1:])
    models = list(csv.reader(io.StringIO(b"".join(_client(admin_user).get("/admin/usage/export.csv", {"by": "model"}).streaming_content).decode())))  # type: ignore[attr-defined]
    assert sorted(r[1] for r in models[1:]) == ["'==HYPERLINK(\"http://evil\")", "plain"]


def test_the_dashboard_renders_names_as_text(admin_user: AbstractUser) -> None:
    mallory = make_user("<img src=x onerror=alert(1)>")
    seed_usage(mallory, tokens=5, model="<script>alert(1)</script>")
    text = _client(admin_user).get("/admin/usage/").content.decode()
    assert "<img src=x" not in text
    assert "<script>alert(1)</script>" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
