"""The audit log page (staff only): newest first, filtered, paginated; and its CSV."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from . import selectors
from .csv_export import csv_chunks
from .forms import AuditFilterForm
from .services import audit_record, client_address

PAGE_SIZE = 50

View = Callable[..., HttpResponseBase]


def staff_required(view: View) -> View:
    """Staff only; others get the ordinary 404 page (as on the other admin pages)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            return render(request, "404.html", status=404)
        return view(request, *args, **kwargs)

    return wrapper


def _form(request: HttpRequest) -> AuditFilterForm:
    form = AuditFilterForm(request.GET)
    form.is_valid()  # an invalid filter is ignored and shown with its error
    return form


@require_GET
@staff_required
def index(request: HttpRequest) -> HttpResponse:
    form = _form(request)
    filters = form.filters()
    before = form.cleaned_data.get("before")
    entries, next_before = selectors.audit_page(filters=filters, before=before, size=PAGE_SIZE)
    query = filters.query()
    return render(
        request,
        "audit/index.html",
        {
            "form": form,
            "entries": entries,
            "filtered": bool(query),
            "first_page": before is None,
            "newest_url": "?" + urlencode(query) if query else "?",
            "next_url": "?" + urlencode({**query, "before": next_before}) if next_before else "",
            "csv_query": urlencode(query),
        },
    )


@require_GET
@staff_required
def export_csv(request: HttpRequest) -> HttpResponseBase:
    """Every entry the filters match (the page's rows and all older ones), as CSV."""
    filters = _form(request).filters()
    audit_record(actor=request.user, action="audit.exported", detail=filters.query(), address=client_address(request))
    response = StreamingHttpResponse(
        csv_chunks(selectors.audit_entries(filters=filters)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="audit-{timezone.localdate():%Y-%m-%d}.csv"'
    response["Cache-Control"] = "private, no-store"
    return response
