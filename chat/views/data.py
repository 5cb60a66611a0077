"""Search, export and import: the search page and its JSON, downloads, and "Your data"."""

from __future__ import annotations

from typing import IO

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from .. import search as search_selector
from ..access import Access, ConversationNotFound, get_conversation
from ..services import exports, imports
from .common import signed_in

PAGE = 20


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


@login_required
@require_GET
def search_page(request: HttpRequest) -> HttpResponse:
    """``/search/?q=...``: the results, rendered on the server (``&offset=`` for more)."""
    raw = request.GET.get("q", "")
    query = search_selector.clean_query(raw)
    offset = max(0, min(_int(request.GET.get("offset"), 0), search_selector.MAX_OFFSET))
    # One more than shown: whether there is a next page, at no extra query.
    found = search_selector.search(user=request.user, query=query, limit=PAGE + 1, offset=offset) if query else []
    more = len(found) > PAGE and offset + PAGE <= search_selector.MAX_OFFSET
    return render(
        request,
        "chat/search.html",
        {
            "q": raw[: search_selector.MAX_QUERY_CHARS],
            "query": query,
            "too_long": len(" ".join(raw.split())) > search_selector.MAX_QUERY_CHARS,
            "results": found[:PAGE],
            "offset": offset,
            "next_offset": offset + PAGE if more else None,
            "previous_offset": max(0, offset - PAGE) if offset else None,
            "max_query": search_selector.MAX_QUERY_CHARS,
        },
    )


@login_required
@require_GET
def search_json(request: HttpRequest) -> JsonResponse:
    """``/search.json?q=...&limit=&offset=`` for the sidebar's live search."""
    query = search_selector.clean_query(request.GET.get("q", ""))
    limit = _int(request.GET.get("limit"), PAGE)
    offset = _int(request.GET.get("offset"), 0)
    found = search_selector.search(user=request.user, query=query, limit=limit, offset=offset) if query else []
    return JsonResponse({"query": query, "results": [search_selector.result_payload(r) for r in found]})


def _download(file: IO[bytes], filename: str, content_type: str) -> FileResponse:
    response = FileResponse(file, as_attachment=True, filename=filename, content_type=content_type)
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_GET
def export_markdown(request: HttpRequest, conversation_id: str) -> HttpResponseBase:
    try:
        conversation, _level = get_conversation(user=request.user, conversation_id=conversation_id, needed=Access.READ)
    except ConversationNotFound:
        return render(request, "404.html", status=404)
    return _download(
        exports.conversation_markdown(conversation=conversation),
        exports.export_filename(conversation, "md"),
        "text/markdown; charset=utf-8",
    )


@login_required
@require_GET
def export_json(request: HttpRequest, conversation_id: str) -> HttpResponseBase:
    try:
        conversation, _level = get_conversation(user=request.user, conversation_id=conversation_id, needed=Access.READ)
    except ConversationNotFound:
        return render(request, "404.html", status=404)
    return _download(
        exports.conversation_json(conversation=conversation),
        exports.export_filename(conversation, "json"),
        "application/json",
    )


@login_required
@require_GET
def export_all(request: HttpRequest) -> HttpResponseBase:
    """Every conversation the user started, one JSON file each, as a zip."""
    user = signed_in(request)
    archive, _count = exports.export_all_zip(user=user)
    name = slugify(user.get_username()) or "export"
    return _download(archive, f"private-llm-{name}-{timezone.localdate():%Y-%m-%d}.zip", "application/zip")


@login_required
@require_GET
def data_page(request: HttpRequest) -> HttpResponse:
    """"Your data": download everything, or import an export."""
    return render(request, "chat/data.html", {"max_bytes_mib": settings.IMPORT_MAX_BYTES // (1024 * 1024)})


@login_required
@require_POST
def import_upload(request: HttpRequest) -> HttpResponse:
    """The uploaded file's conversations become the user's, or nothing does (with why)."""
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, _("Choose a file to import."))
        return redirect("data_settings")
    try:
        with upload.open("rb") as file:
            result = imports.import_file(owner=signed_in(request), file=file, size=upload.size)
    except imports.ImportRefused as exc:
        messages.error(request, _("Nothing was imported. %(reason)s") % {"reason": exc.message})
        return redirect("data_settings")
    messages.success(
        request,
        ngettext("Imported %(count)d conversation.", "Imported %(count)d conversations.", result.count)
        % {"count": result.count},
    )
    return redirect("data_settings")
