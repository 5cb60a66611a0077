"""The chat page: the sidebar, and the open conversation's current branch."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from models_admin.selectors import default_model_for_user, model_list_for_user
from projects.access import projects_for_user

from .. import selectors, tree
from ..access import Access, ConversationNotFound, get_conversation
from ..models import Conversation
from ..serializers import conversation_payload, thread_payload

LEVELS = {Access.READ: "read", Access.WRITE: "write", Access.OWNER: "owner"}


def chat_page(request: HttpRequest, conversation: Conversation | None, level: Access = Access.OWNER) -> HttpResponse:
    user = request.user
    # Embedding-only models cannot chat: keep them out of the picker.
    models = [m for m in model_list_for_user(user=user) if "embedding" not in m.capabilities or "completion" in m.capabilities]
    thread = tree.thread(conversation) if conversation else tree.Thread(path=[], siblings={})
    preferred = None
    if conversation is not None:
        preferred = conversation.model or (conversation.project.default_model if conversation.project else None)
    selected = preferred if preferred in models else default_model_for_user(user=user)
    generating = next((m.id for m in reversed(thread.path) if m.status == "streaming"), None)
    sidebar = selectors.sidebar(user=user)
    page_data: dict[str, Any] = {
        "conversation_id": str(conversation.id) if conversation else None,
        "conversation": conversation_payload(conversation) if conversation else None,
        "access": LEVELS.get(level, "read"),
        "owner": conversation.owner.get_username() if conversation else user.get_username(),
        "me": user.get_username(),
        "messages": thread_payload(thread),
        "models": [{"name": m.full_name, "label": m.label} for m in models],
        "selected_model": selected.full_name if selected else "",
        "generating_id": generating,
        "sidebar_next": sidebar.next_cursor,
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
