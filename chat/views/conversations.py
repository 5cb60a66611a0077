"""JSON endpoints on conversations: create, list, rename, delete, flags, move, branches, stop, fork."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from projects.access import ProjectForbidden, ProjectNotFound, get_project
from projects.models import Project

from .. import selectors, services
from ..access import Access, ConversationForbidden, ConversationNotFound, get_conversation
from ..generation import request_stop
from ..serializers import conversation_payload, thread_payload
from .common import conversation_for, error, json_body, json_view, malformed, not_found, signed_in


def _project_from(request: HttpRequest, value: Any) -> Project | None:
    """The project named in a request body (None: none); a 404 for one the user cannot see."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError
    try:
        project, _role = get_project(user=request.user, project_id=value)
    except ProjectNotFound:
        raise services.ChatError(_("This project does not exist or you are not a member.")) from None
    except ProjectForbidden as exc:
        raise services.ChatError(exc.message) from None
    return project


@login_required
@require_POST
@json_view
def conversation_create(request: HttpRequest) -> JsonResponse:
    body = json_body(request)
    model_name = body.get("model")
    if model_name is not None and not isinstance(model_name, str):
        return malformed()
    try:
        project = _project_from(request, body.get("project"))
    except ValueError:
        return malformed()
    conversation = services.conversation_create(owner=signed_in(request), model_name=model_name or None, project=project)
    return JsonResponse({"id": str(conversation.id), "url": f"/c/{conversation.id}/"}, status=201)


@login_required
@require_GET
def conversation_list(request: HttpRequest) -> JsonResponse:
    """One page of the sidebar: ``?after=<cursor>`` from the previous page, ``?archived=1``."""
    page = selectors.sidebar(
        user=request.user, after=request.GET.get("after") or None, archived=request.GET.get("archived") == "1"
    )
    return JsonResponse({"items": [conversation_payload(c) for c in page.items], "next": page.next_cursor})


@login_required
@require_POST
@json_view
def conversation_rename(request: HttpRequest, conversation_id: str) -> JsonResponse:
    conversation, _level = conversation_for(request, conversation_id, Access.OWNER)
    body = json_body(request)
    if not isinstance(body.get("title"), str):
        return malformed()
    services.conversation_rename(conversation=conversation, title=body["title"])
    return JsonResponse({"id": str(conversation.id), "title": conversation.title})


@login_required
@require_POST
@json_view
def conversation_delete(request: HttpRequest, conversation_id: str) -> HttpResponse:
    conversation, _level = conversation_for(request, conversation_id, Access.OWNER)
    services.conversation_delete(conversation=conversation)
    return HttpResponse(status=204)


@login_required
@require_POST
@json_view
def conversation_flags(request: HttpRequest, conversation_id: str) -> JsonResponse:
    """Pin or archive (``{"pinned": true}``, ``{"archived": false}``)."""
    conversation, _level = conversation_for(request, conversation_id, Access.OWNER)
    body = json_body(request)
    pinned, archived = body.get("pinned"), body.get("archived")
    if pinned is None and archived is None or any(v is not None and not isinstance(v, bool) for v in (pinned, archived)):
        return malformed()
    services.conversation_flags(conversation=conversation, pinned=pinned, archived=archived)
    return JsonResponse(conversation_payload(conversation))


@login_required
@require_POST
@json_view
def conversation_move(request: HttpRequest, conversation_id: str) -> JsonResponse:
    """Into a project (``{"project": "<id>"}``) or out of it (``{"project": null}``)."""
    conversation, _level = conversation_for(request, conversation_id, Access.OWNER)
    body = json_body(request)
    if "project" not in body:
        return malformed()
    try:
        project = _project_from(request, body.get("project"))
    except ValueError:
        return malformed()
    services.conversation_move(conversation=conversation, user=signed_in(request), project=project)
    return JsonResponse(conversation_payload(conversation))


@login_required
@require_POST
@json_view
def conversation_branch(request: HttpRequest, conversation_id: str) -> JsonResponse:
    """Show the branch through ``message_id`` (‹ 1/2 ›). Readers may look at any branch;
    for writers it also becomes the conversation's current one."""
    conversation, level = conversation_for(request, conversation_id, Access.READ)
    body = json_body(request)
    thread = services.branch_select(
        conversation=conversation, message_id=body.get("message_id"), remember=level >= Access.WRITE
    )
    return JsonResponse({"messages": thread_payload(thread)})


@login_required
@require_POST
@json_view
def conversation_fork(request: HttpRequest, conversation_id: str) -> JsonResponse:
    """A private copy of the current branch, for anyone who may read the conversation."""
    conversation, _level = conversation_for(request, conversation_id, Access.READ)
    fork = services.conversation_fork(source=conversation, user=signed_in(request), up_to=conversation.current_leaf)
    return JsonResponse({"id": str(fork.id), "url": f"/c/{fork.id}/"}, status=201)


@sync_to_async
def _streaming_answer_id(user: Any, conversation_id: str) -> int | None:
    conversation, _level = get_conversation(user=user, conversation_id=conversation_id, needed=Access.WRITE)
    answer = selectors.streaming_message(conversation=conversation)
    return answer.id if answer else None


@require_POST
async def conversation_stop(request: HttpRequest, conversation_id: str) -> HttpResponse:
    # Async so the stop reaches the channel layer on the server's own event loop.
    user = await request.auser()
    if not user.is_authenticated:
        return error(_("Please sign in."), 401)
    try:
        answer_id = await _streaming_answer_id(user, conversation_id)
    except ConversationNotFound:
        return not_found()
    except ConversationForbidden as exc:
        return error(exc.message, 403, "forbidden")
    if answer_id is not None:
        await request_stop(answer_id)
    return HttpResponse(status=202)
