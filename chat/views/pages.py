"""The chat page: the sidebar, and the open conversation's current branch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from models_admin.selectors import default_model_for_user, model_list_for_user
from projects.access import projects_for_user

from .. import selectors, tree
from ..access import Access, ConversationNotFound, get_conversation
from ..models import Conversation
from ..routing import socket_path
from ..serializers import conversation_payload, thread_payload
from .common import conversation_for, json_view

LEVELS = {Access.READ: "read", Access.WRITE: "write", Access.OWNER: "owner"}

# Stand-ins that ``reverse`` accepts where the browser puts the real value: "{conversation_id}"
# is not a valid path segment to reverse (braces are quoted) and <int:...> wants digits.
_PLACEHOLDERS = {"conversation_id": "conversation-id", "user_id": 9_000_000_001, "link_id": 9_000_000_002,
                 "project_id": "project-id"}


def _template(name: str, *keys: str, reverser: Callable[..., str] = reverse) -> str:
    """The URL called ``name`` with ``{key}`` where each of ``keys`` goes (static/js/chat/http.js)."""
    url = reverser(name, kwargs={key: _PLACEHOLDERS[key] for key in keys})
    for key in keys:
        url = url.replace(str(_PLACEHOLDERS[key]), "{" + key + "}")
    return url


def page_urls() -> dict[str, str]:
    """Every address the chat page's scripts use, from the URLconf (and the socket routes)."""
    conversation = {
        name: _template(route, "conversation_id")
        for name, route in (
            ("conversation", "conversation"),
            ("rename", "conversation_rename"),
            ("delete", "conversation_delete"),
            ("flags", "conversation_flags"),
            ("move", "conversation_move"),
            ("branch", "conversation_branch"),
            ("stop", "conversation_stop"),
            ("sync", "conversation_sync"),
            ("shares", "conversation_shares"),
            ("links", "share_link_create"),
            ("export_md", "conversation_export_md"),
            ("export_json", "conversation_export_json"),
        )
    }
    return {
        **conversation,
        "home": reverse("home"),
        "create": reverse("conversation_create"),
        "list": reverse("conversation_list"),
        "search_json": reverse("search_json"),
        "share_remove": _template("conversation_share_remove", "conversation_id", "user_id"),
        "link_revoke": _template("share_link_revoke", "conversation_id", "link_id"),
        "project": _template("projects:detail", "project_id"),
        "socket": _template("conversation_socket", "conversation_id", reverser=socket_path),
        "home_socket": socket_path("home_socket"),
    }


def conversation_state(*, conversation: Conversation, level: Access) -> dict[str, Any]:
    """What the browser knows of an open conversation: the page embeds it, and
    ``GET /c/<id>/sync.json`` sends it again (the current branch, title, project, access and
    the answer being generated, if any)."""
    thread = tree.thread(conversation)
    return {
        "conversation_id": str(conversation.id),
        "conversation": conversation_payload(conversation),
        "access": LEVELS.get(level, "read"),
        "owner": conversation.owner.get_username(),
        "messages": thread_payload(thread),
        "generating_id": next((m.id for m in reversed(thread.path) if m.status == "streaming"), None),
    }


def _no_conversation(user: AbstractBaseUser | AnonymousUser) -> dict[str, Any]:
    return {"conversation_id": None, "conversation": None, "access": "owner", "owner": user.get_username(),
            "messages": [], "generating_id": None}


def chat_page(request: HttpRequest, conversation: Conversation | None, level: Access = Access.OWNER) -> HttpResponse:
    user = request.user
    # Embedding-only models cannot chat: keep them out of the picker.
    models = [m for m in model_list_for_user(user=user) if "embedding" not in m.capabilities or "completion" in m.capabilities]
    preferred = None
    if conversation is not None:
        preferred = conversation.model or (conversation.project.default_model if conversation.project else None)
    selected = preferred if preferred in models else default_model_for_user(user=user)
    sidebar = selectors.sidebar(user=user)
    page_data: dict[str, Any] = {
        **(conversation_state(conversation=conversation, level=level) if conversation else _no_conversation(user)),
        "me": user.get_username(),
        "models": [{"name": m.full_name, "label": m.label} for m in models],
        "selected_model": selected.full_name if selected else "",
        "sidebar_next": sidebar.next_cursor,
        "urls": page_urls(),
    }
    return render(
        request,
        "chat/chat.html",
        {
            "conversations": sidebar.items,
            "shared_conversations": selectors.shared_sidebar(user=user),
            "projects": projects_for_user(user=user).order_by("name")[:100],
            "conversation": conversation,
            "access": page_data["access"],
            "page_data": page_data,
        },
    )


@login_required
@require_GET
def chat_home(request: HttpRequest) -> HttpResponse:
    return chat_page(request, None)


@login_required
@require_GET
def conversation_detail(request: HttpRequest, conversation_id: str) -> HttpResponse:
    try:
        conversation, level = get_conversation(user=request.user, conversation_id=conversation_id)
    except ConversationNotFound:
        return render(request, "404.html", status=404)
    return chat_page(request, conversation, level)


@login_required
@require_GET
@never_cache
@json_view
def conversation_sync(request: HttpRequest, conversation_id: str) -> JsonResponse:
    """The open conversation's state again, as the page embeds it (after a reconnect, or when
    a frame arrived for a branch the page does not show). Anyone who may read it."""
    conversation, level = conversation_for(request, conversation_id, Access.READ)
    return JsonResponse(conversation_state(conversation=conversation, level=level))
