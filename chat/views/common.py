"""What every chat view shares: JSON bodies, errors in one shape, the signed-in user."""

from __future__ import annotations

from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _

from webio.json import BadJson, parse_json, too_large

from ..access import Access, ConversationForbidden, ConversationNotFound, get_conversation
from ..models import Conversation
from ..services import ChatError


def error(message: str, status: int, code: str = "") -> JsonResponse:
    body = {"error": message}
    if code:
        body["code"] = code
    return JsonResponse(body, status=status)


def not_found() -> JsonResponse:
    return error(_("This conversation does not exist or is not yours."), 404, "not_found")


def json_body(request: HttpRequest) -> dict[str, Any]:
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


def signed_in(request: HttpRequest) -> User:
    """The user of a ``login_required`` view."""
    assert isinstance(request.user, User)
    return request.user


class Refused(Exception):
    """Stop a view with this response (raised by ``conversation_for``)."""

    def __init__(self, response: JsonResponse) -> None:
        self.response = response


def conversation_for(request: HttpRequest, conversation_id: str, needed: Access) -> tuple[Conversation, Access]:
    """The conversation through the one access helper, or ``Refused`` with a 404/403."""
    try:
        return get_conversation(user=request.user, conversation_id=conversation_id, needed=needed)
    except ConversationNotFound:
        raise Refused(not_found()) from None
    except ConversationForbidden as exc:
        raise Refused(error(exc.message, 403, "forbidden")) from None


def malformed() -> JsonResponse:
    return error(_("The request is malformed."), 400, "malformed")




def json_view(view: Any) -> Any:
    """Turn ``Refused``, ``BadJson`` and ``ChatError`` into their JSON answers."""
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            return view(request, *args, **kwargs)
        except Refused as exc:
            return exc.response
        except BadJson as exc:
            return error(exc.message, 400, "malformed")
        except ChatError as exc:
            return error(exc.message, 400, "refused")

    return wrapper
