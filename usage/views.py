"""The usage dashboard and quota pages (staff only, /admin/usage/) and each person's own
usage page (/settings/usage/): authenticate, parse, read or call a service, respond."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser, Group
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Quota
from accounts.selectors import Limit, effective_quota, tokens_used
from audit.services import client_address
from models_admin.views import staff_required

from . import selectors, services
from .forms import QuotaForm, RangeForm
from .selectors import Row, Totals


def _total(rows: Iterable[Row]) -> Totals:
    total = Totals()
    for row in rows:
        total.add(row.totals.requests, row.totals.prompt_tokens, row.totals.completion_tokens)
    return total


@staff_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    form = RangeForm(request.GET or None)
    rng, dimension = form.result()
    rows = selectors.breakdown(rng, dimension)
    top_users = rows if dimension == "user" else selectors.breakdown(rng, "user")
    top_models = rows if dimension == "model" else selectors.breakdown(rng, "model")
    # A user in two groups counts twice per group; the totals come from a single-valued split.
    total = _total(top_users)
    return render(
        request,
        "usage/dashboard.html",
        {
            "form": form,
            "range": rng,
            "dimension": dimension,
            "dimension_label": dict(form.fields["by"].choices)[dimension],  # type: ignore[attr-defined]
            "rows": rows[:50],
            "more_rows": max(0, len(rows) - 50),
            "top_users": top_users[: selectors.TOP],
            "top_models": top_models[: selectors.TOP],
            "total": total,
            "chart": selectors.chart(rng, dimension, rows).as_json(),
            "query": urlencode({"start": rng.start.isoformat(), "end": rng.end.isoformat(), "by": dimension}),
        },
    )


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """A cell that a spreadsheet will not run as a formula: text starting with = + - @ (or a
    tab or carriage return, which some spreadsheets skip first) gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


@staff_required
@require_GET
def export_csv(request: HttpRequest) -> HttpResponse:
    form = RangeForm(request.GET or None)
    if request.GET and not form.is_valid():
        return HttpResponse(" ".join(str(e) for e in form.non_field_errors()) or _("The date range is not valid."), status=400,
                            content_type="text/plain; charset=utf-8")
    rng, dimension = form.result()
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(["day", dimension, "requests", "prompt_tokens", "completion_tokens"])
        for row in selectors.export_rows(rng, dimension):
            yield writer.writerow([csv_safe(cell) if isinstance(cell, str) else cell for cell in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    name = f"usage-{dimension}-{rng.start.isoformat()}-{rng.end.isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    # Streamed: a year of days times thousands of users need not sit in memory. (The cast:
    # staff_required is typed for HttpResponse, which StreamingHttpResponse is not a subclass of.)
    return cast(HttpResponse, response)


# ---- Quotas ------------------------------------------------------------------------------------


def _initial(quota: Quota | None) -> dict[str, int | None]:
    return {name: getattr(quota, name) if quota else None for name in Quota.LIMITS}


@staff_required
@require_GET
def quotas(request: HttpRequest) -> HttpResponse:
    user_search = request.GET.get("user", "").strip()[:150]
    group_search = request.GET.get("group", "").strip()[:150]
    groups = selectors.groups_with_quotas(search=group_search)
    users = selectors.users_for_quotas(search=user_search)
    return render(
        request,
        "usage/quotas.html",
        {
            "user_search": user_search,
            "group_search": group_search,
            "groups": [(g, QuotaForm(initial=_initial(selectors.quota_of(g)), prefix=f"g{g.pk}")) for g in groups],
            "users": [(u, QuotaForm(initial=_initial(selectors.quota_of(u)), prefix=f"u{u.pk}")) for u in users],
            "back": request.get_full_path(),
        },
    )


def _save_quota(request: HttpRequest, owner: AbstractBaseUser | Group, prefix: str, name: str) -> HttpResponse:
    form = QuotaForm(request.POST, prefix=prefix)
    back = request.POST.get("back", "")
    if not back.startswith("/admin/usage/quotas/"):
        back = "/admin/usage/quotas/"
    if not form.is_valid():
        problems = "; ".join(f"{form.fields[f].label}: {' '.join(str(m) for m in e)}" for f, e in form.errors.items())
        messages.error(request, _("The quota for %(name)s was not saved. %(problems)s") % {"name": name, "problems": problems})
        return redirect(back)
    changed = services.quota_change(
        actor=request.user, owner=owner, limits=form.cleaned_data, address=client_address(request)
    )
    if changed:
        messages.success(request, _("The quota for %(name)s was saved.") % {"name": name})
    else:
        messages.info(request, _("The quota for %(name)s did not change.") % {"name": name})
    return redirect(back)


@staff_required
@require_POST
def quota_user(request: HttpRequest, user_id: int) -> HttpResponse:
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        return render(request, "404.html", status=404)
    return _save_quota(request, user, f"u{user.pk}", user.get_username())


@staff_required
@require_POST
def quota_group(request: HttpRequest, group_id: int) -> HttpResponse:
    group = Group.objects.filter(pk=group_id).first()
    if group is None:
        return render(request, "404.html", status=404)
    return _save_quota(request, group, f"g{group.pk}", group.name)


# ---- One's own usage -----------------------------------------------------------------------------


@login_required
@require_GET
def mine(request: HttpRequest) -> HttpResponse:
    user_id = int(request.user.pk)  # type: ignore[arg-type]
    quota = effective_quota(user_id=user_id)
    used = tokens_used(user_id=user_id)
    concurrent = quota.concurrent_answers
    if concurrent.value is None:  # the platform-wide default applies (generation.limits)
        concurrent = Limit(settings.MAX_CONCURRENT_GENERATIONS_PER_USER, "default")
    limits = [
        (_("Tokens per day"), quota.tokens_per_day, used.today),
        (_("Tokens per month"), quota.tokens_per_month, used.month),
        (_("Requests per minute"), quota.requests_per_minute, None),
        (_("Concurrent answers"), concurrent, None),
    ]
    rng = selectors.default_range()
    return render(
        request,
        "usage/mine.html",
        {
            "used": used,
            "requests_today": selectors.requests_today(user_id=user_id),
            "limits": limits,
            "chart": selectors.personal_chart(user_id=user_id, rng=rng).as_json(),
            "range": rng,
        },
    )
