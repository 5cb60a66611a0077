from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from models_admin.selectors import default_model_for_user, model_list_for_user
from webio.json import BadJson, parse_json, too_large

from . import selectors, services
from .generation import request_stop
from .serializers import message_payload


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _not_found() -> JsonResponse:
    return _error(_("This conversation does not exist or is not yours."), 404)


def _json_body(request: HttpRequest) -> dict[str, Any]:
    """The JSON object sent; ``BadJson`` says what is wrong with anything else (a 400).

    Refused too: nesting, unpaired surrogates and NULs, which PostgreSQL cannot store.
    """
    limit = settings.MAX_MESSAGE_CHARS * 4 + 4096
    try:
        raw = request.body
    except RequestDataTooBig:  # over MAX_REQUEST_BYTES: Django refuses to read it
        raise too_large(limit) from None
    body = parse_json(raw or b"{}", max_bytes=limit)
    if not isinstance(body, dict):
        raise BadJson(_("The request is malformed."))
    return body


def _signed_in(request: HttpRequest) -> User:
    """The user of a ``login_required`` view."""
    assert isinstance(request.user, User)
    return request.user


def _chat_page(request: HttpRequest, conversation: Any | None) -> HttpResponse:
    user = request.user
    # Embedding-only models cannot chat: keep them out of the picker.
    models = [m for m in model_list_for_user(user=user) if "embedding" not in m.capabilities or "completion" in m.capabilities]
    messages = selectors.conversation_messages(conversation=conversation) if conversation else []
    selected = conversation.model if conversation and conversation.model in models else default_model_for_user(user=user)
    generating = next((m.id for m in reversed(messages) if m.status == "streaming"), None)
    page_data = {
        "conversation_id": str(conversation.id) if conversation else None,
        "messages": [message_payload(m) for m in messages],
        "models": [{"name": m.full_name, "label": m.label} for m in models],
        "selected_model": selected.full_name if selected else "",
        "generating_id": generating,
    }
    return render(
        request,
        "chat/chat.html",
        {
            "conversations": selectors.conversations_for_user(user=user).only("id", "title", "updated_at")[:200],
            "conversation": conversation,
            "page_data": page_data,
        },
    )


@login_required
@require_GET
def chat_home(request: HttpRequest) -> HttpResponse:
    return _chat_page(request, None)


@login_required
@require_GET
def conversation_detail(request: HttpRequest, conversation_id: str) -> HttpResponse:
    try:
        conversation = selectors.get_conversation_for_user(user=request.user, conversation_id=conversation_id)
    except selectors.ConversationNotFound:
        return render(request, "404.html", status=404)
    return _chat_page(request, conversation)


@login_required
@require_POST
def conversation_create(request: HttpRequest) -> JsonResponse:
    try:
        body = _json_body(request)
    except BadJson as exc:
        return _error(exc.message, 400)
    model_name = body.get("model")
    if model_name is not None and not isinstance(model_name, str):
        return _error(_("The request is malformed."), 400)
    try:
        conversation = services.conversation_create(owner=_signed_in(request), model_name=model_name or None)
    except services.ChatError as exc:
        return _error(exc.message, 400)
    return JsonResponse({"id": str(conversation.id), "url": f"/c/{conversation.id}/"}, status=201)


@login_required
@require_POST
def conversation_rename(request: HttpRequest, conversation_id: str) -> JsonResponse:
    try:
        conversation = selectors.get_conversation_for_user(user=request.user, conversation_id=conversation_id)
    except selectors.ConversationNotFound:
        return _not_found()
    try:
        body = _json_body(request)
    except BadJson as exc:
        return _error(exc.message, 400)
    if not isinstance(body.get("title"), str):
        return _error(_("The request is malformed."), 400)
    try:
        services.conversation_rename(conversation=conversation, title=body["title"])
    except services.ChatError as exc:
        return _error(exc.message, 400)
    return JsonResponse({"id": str(conversation.id), "title": conversation.title})


@login_required
@require_POST
def conversation_delete(request: HttpRequest, conversation_id: str) -> HttpResponse:
    try:
        conversation = selectors.get_conversation_for_user(user=request.user, conversation_id=conversation_id)
    except selectors.ConversationNotFound:
        return _not_found()
    services.conversation_delete(conversation=conversation)
    return HttpResponse(status=204)


@sync_to_async
def _streaming_answer_id(user: Any, conversation_id: str) -> int | None:
    conversation = selectors.get_conversation_for_user(user=user, conversation_id=conversation_id)
    answer = selectors.streaming_message(conversation=conversation)
    return answer.id if answer else None


@require_POST
async def conversation_stop(request: HttpRequest, conversation_id: str) -> HttpResponse:
    # Async so the stop reaches the channel layer on the server's own event loop.
    user = await request.auser()
    if not user.is_authenticated:
        return _error(_("Please sign in."), 401)
    try:
        answer_id = await _streaming_answer_id(user, conversation_id)
    except selectors.ConversationNotFound:
        return _not_found()
    if answer_id is not None:
        await request_stop(answer_id)
    return HttpResponse(status=202)
