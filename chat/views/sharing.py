"""Sharing: named colleagues, snapshot links, and the page a link opens."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.services import client_address

from .. import services, tree
from ..access import Access, ShareLinkNotFound, ShareLinkRevoked, share_link_access
from ..models import Conversation, ConversationShare, ShareLink
from ..serializers import thread_payload
from .common import conversation_for, json_body, json_view, malformed, signed_in


def _shares(conversation: Conversation) -> dict[str, Any]:
    people = ConversationShare.objects.filter(conversation=conversation).select_related("user", "shared_by").order_by("user__username")
    links = ShareLink.objects.filter(conversation=conversation).select_related("created_by").order_by("-created_at")[:50]
    return {
        "people": [
            {
                "user_id": share.user_id,
                "username": share.user.get_username(),
                "permission": share.permission,
                "shared_by": share.shared_by.get_username() if share.shared_by else "",
                "created_at": share.created_at.isoformat(),
            }
            for share in people
        ],
        "links": [
            {
                "id": link.id,
                "title": link.title,
                "created_by": link.created_by.get_username() if link.created_by else "",
                "created_at": link.created_at.isoformat(),
                "revoked": link.revoked_at is not None,
            }
            for link in links
        ],
    }


@login_required
@require_http_methods(["GET", "POST"])
@json_view
def conversation_shares(request: HttpRequest, conversation_id: str) -> JsonResponse:
    """GET: who it is shared with and its links. POST ``{"username", "permission"}``: share."""
    conversation, _level = conversation_for(request, conversation_id, Access.OWNER)
    if request.method == "POST":
        body = json_body(request)
        username, permission = body.get("username"), body.get("permission", "read")
        if not isinstance(username, str) or not isinstance(permission, str) or len(username) > 254:
            return malformed()
        services.share_add(conversation=conversation, shared_by=signed_in(request), username=username,
                           permission=permission, address=client_address(request))
    return JsonResponse(_shares(conversation))


@login_required
@require_POST
@json_view
def conversation_share_remove(request: HttpRequest, conversation_id: str, user_id: int) -> JsonResponse:
    conversation, _level = conversation_for(request, conversation_id, Access.OWNER)
    services.share_remove(conversation=conversation, user_id=user_id, actor=signed_in(request),
                          address=client_address(request))
    return JsonResponse(_shares(conversation))


@login_required
@require_POST
@json_view
def share_link_create(request: HttpRequest, conversation_id: str) -> JsonResponse:
    conversation, _level = conversation_for(request, conversation_id, Access.OWNER)
    created = services.share_link_create(conversation=conversation, created_by=signed_in(request),
                                         address=client_address(request))
    return JsonResponse(
        {"id": created.link.id, "url": request.build_absolute_uri(f"/s/{created.token}/"), **_shares(conversation)},
        status=201,
    )


@login_required
@require_POST
@json_view
def share_link_revoke(request: HttpRequest, conversation_id: str, link_id: int) -> JsonResponse:
    conversation, _level = conversation_for(request, conversation_id, Access.OWNER)
    services.share_link_revoke(conversation=conversation, link_id=link_id, actor=signed_in(request),
                               address=client_address(request))
    return JsonResponse(_shares(conversation))


def _link_or_page(request: HttpRequest, token: str) -> ShareLink | HttpResponse:
    try:
        return share_link_access(user=request.user, token=token)
    except ShareLinkNotFound:
        return render(request, "404.html", status=404)
    except ShareLinkRevoked as exc:
        return render(request, "chat/share_revoked.html", {"link": exc.link}, status=410)


@login_required
@require_GET
def share_link_page(request: HttpRequest, token: str) -> HttpResponse:
    """The snapshot: the branch as it was when the link was made, read only."""
    found = _link_or_page(request, token)
    if isinstance(found, HttpResponse):
        return found
    thread = tree.thread(found.conversation, leaf_id=found.up_to_id)
    return render(
        request,
        "chat/share_link.html",
        {
            "link": found,
            "token": token,
            "page_data": {"messages": thread_payload(thread), "title": found.title},
        },
    )


@login_required
@require_POST
def share_link_fork(request: HttpRequest, token: str) -> HttpResponse:
    """"Continue in my own copy": a private conversation from the snapshot."""
    found = _link_or_page(request, token)
    if isinstance(found, HttpResponse):
        return found
    fork = services.conversation_fork(source=found.conversation, user=signed_in(request), up_to=found.up_to, title=found.title)
    return redirect(f"/c/{fork.id}/")
