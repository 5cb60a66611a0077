"""Search, export and import: the search page and its JSON, downloads, and "Your data"."""

from __future__ import annotations

import uuid
from typing import IO, Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.services import audit_record, client_address
from models_admin.views import staff_required

from .. import search as search_selector
from .. import tree
from ..access import Access, ConversationNotFound, get_conversation
from ..models import Conversation
from ..forms import AccountDeleteForm, AdminAccountDeleteForm
from ..services import exports, imports, personal_data
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


def _exported(request: HttpRequest, *, target: str, **detail: Any) -> None:
    audit_record(actor=request.user, action="data.exported", target=target, detail=detail,
                 address=client_address(request))


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
    _exported(request, target=f"conversation {conversation.id}", what="conversation", format="md")
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
    _exported(request, target=f"conversation {conversation.id}", what="conversation", format="json")
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
    archive, count = exports.export_all_zip(user=user)
    _exported(request, target=user.get_username(), what="conversations", conversations=count)
    name = slugify(user.get_username()) or "export"
    return _download(archive, f"private-llm-{name}-{timezone.localdate():%Y-%m-%d}.zip", "application/zip")


@login_required
@require_GET
def data_page(request: HttpRequest) -> HttpResponse:
    """"Your data": download everything, import an export, delete the account."""
    return _data_page(request, AccountDeleteForm(user=signed_in(request)))


def _data_page(request: HttpRequest, delete_form: AccountDeleteForm, status: int = 200) -> HttpResponse:
    return render(
        request,
        "chat/data.html",
        {"max_bytes_mib": settings.IMPORT_MAX_BYTES // (1024 * 1024), "delete_form": delete_form},
        status=status,
    )


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
    audit_record(actor=request.user, action="data.imported", target=request.user.get_username(),
                 detail={"conversations": result.count}, address=client_address(request))
    messages.success(
        request,
        ngettext("Imported %(count)d conversation.", "Imported %(count)d conversations.", result.count)
        % {"count": result.count},
    )
    return redirect("data_settings")


# --- Personal data: everything in one zip, and deleting the account ------------------------


def _personal_zip(request: HttpRequest, user: User) -> FileResponse:
    archive = personal_data.personal_data_zip(user=user, actor=signed_in(request), address=client_address(request))
    name = slugify(user.get_username()) or "user"
    return _download(archive, f"private-llm-data-{name}-{timezone.localdate():%Y-%m-%d}.zip", "application/zip")


@login_required
@require_GET
def personal_data_export(request: HttpRequest) -> HttpResponseBase:
    """Everything the platform holds about the signed-in user, as a zip."""
    return _personal_zip(request, signed_in(request))


@login_required
@require_POST
def account_delete(request: HttpRequest) -> HttpResponse:
    """Delete one's own account, after the password (or, without one, the username) again."""
    user = signed_in(request)
    form = AccountDeleteForm(request.POST, user=user)
    if not form.is_valid():
        return _data_page(request, form, status=400)
    try:
        personal_data.account_delete(user=user, actor=user, address=client_address(request))
    except personal_data.AccountDeleteRefused as exc:
        form.add_error(None, exc.message)
        return _data_page(request, form, status=400)
    logout(request)
    messages.success(request, _("Your account and your data were deleted."))
    return redirect("login")


def _user_or_none(user_id: int) -> User | None:
    return User.objects.filter(pk=user_id).first()


@staff_required
@require_GET
def admin_personal_data_export(request: HttpRequest, user_id: int) -> HttpResponseBase:
    """``/admin/users/<id>/data.zip``: what a person would download themselves."""
    user = _user_or_none(user_id)
    if user is None:
        return render(request, "404.html", status=404)
    return _personal_zip(request, user)


@staff_required
@require_http_methods(["GET", "POST"])
def admin_account_delete(request: HttpRequest, user_id: int) -> HttpResponse:
    """``/admin/users/<id>/delete/``: a confirmation page; the POST deletes the account."""
    user = _user_or_none(user_id)
    if user is None:
        return render(request, "404.html", status=404)
    form = AdminAccountDeleteForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        try:
            personal_data.account_delete(user=user, actor=signed_in(request), address=client_address(request))
        except personal_data.AccountDeleteRefused as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("The account “%(name)s” and its data were deleted.") % {"name": form.username})
            if user_id == request.user.pk:
                logout(request)
                return redirect("login")
            return redirect("/admin/users/")
    return render(
        request,
        "chat/admin_account_delete.html",
        {"person": user, "form": form, "counts": personal_data.account_counts(user=user)},
        status=400 if request.method == "POST" else 200,
    )


@staff_required
@require_GET
def admin_conversation_read(request: HttpRequest, conversation_id: str) -> HttpResponse:
    """``/admin/conversations/<id>/``: read-only, and only where the organisation switched on
    ``ADMIN_CAN_READ_CONVERSATIONS``; every read is in the audit log. Otherwise 404, as for
    a conversation that does not exist."""
    if not settings.ADMIN_CAN_READ_CONVERSATIONS:
        return render(request, "404.html", status=404)
    key = _uuid_or_none(conversation_id)
    conversation = Conversation.objects.select_related("owner", "project").filter(pk=key).first() if key else None
    if conversation is None:
        return render(request, "404.html", status=404)
    audit_record(actor=request.user, action="conversation.read_by_admin", target=f"conversation {conversation.id}",
                 detail={"owner": conversation.owner.get_username()}, address=client_address(request))
    return render(request, "chat/admin_conversation.html",
                  {"conversation": conversation, "messages_shown": tree.thread(conversation).path})


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
