"""A self-registered account that waits for approval sees only the waiting page."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _

from accounts.selectors import user_is_pending

# What a waiting account may still open: the waiting page itself and signing out (and what
# that page loads: the JavaScript catalogue, the web app manifest).
_OPEN_PATHS = ("/accounts/waiting/", "/accounts/logout/", "/jsi18n/", "/manifest.webmanifest")


def pending_approval(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    def middleware(request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or request.path.startswith(_OPEN_PATHS):
            return get_response(request)
        if not user_is_pending(user=user):
            return get_response(request)
        if request.method in ("GET", "HEAD") and "text/html" in request.headers.get("Accept", "text/html"):
            return redirect("directory:waiting")
        return JsonResponse(
            {"error": _("Your account is waiting for an administrator's approval."), "code": "account_pending"},
            status=403,
        )

    return middleware
