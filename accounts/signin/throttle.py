"""Throttling failed sign-ins with django-axes: per account and address, and per address.

axes compares one failure count with one limit. The handler below counts both ways
(SIGNIN_FAILURES_PER_ACCOUNT failures of one account from one address, or
SIGNIN_FAILURES_PER_ADDRESS failures of any accounts from one address) and reports the
count nearest to its own limit, scaled to AXES_FAILURE_LIMIT, so that axes' single
comparison locks out exactly when either limit is reached.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from audit.services import audit_record


class ThrottleBackend(AxesStandaloneBackend):
    """axes' gate in front of every sign-in made for a web request.

    ``authenticate()`` without a request (management commands, a shell) has no address to
    throttle and is let through to the other backends; axes itself would raise.
    """

    def authenticate(self, request: HttpRequest | None, username: str | None = None, password: str | None = None,
                     **kwargs: Any) -> None:
        if request is None:
            return None
        super().authenticate(request, username, password, **kwargs)
        return None

    async def aauthenticate(self, request: HttpRequest | None, username: str | None = None,
                            password: str | None = None, **kwargs: Any) -> None:
        # axes has no async twin; Django's async sign-in (the trusted header's) needs one.
        await sync_to_async(self.authenticate)(request, username, password, **kwargs)


class ThrottleHandler(AxesDatabaseHandler):
    def get_failures(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        # The lockout parameters are [[username, ip_address], ip_address]: one query each.
        per_account, per_address = (
            attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
            for attempts in self.get_user_attempts(request, credentials)
        )
        account_limit = settings.SIGNIN_FAILURES_PER_ACCOUNT
        # x >= limit exactly when x * account_limit // limit >= account_limit.
        return max(per_account, per_address * account_limit // settings.SIGNIN_FAILURES_PER_ADDRESS)

    def reset_user_attempts(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        # A successful sign-in clears that account's failures from that address only: axes
        # would clear the whole address, so anyone with an account could reset the
        # per-address count between guesses at other accounts.
        deleted, _ = AccessAttempt.objects.filter(
            username=get_client_username(request, credentials), ip_address=request.axes_ip_address  # type: ignore[attr-defined]
        ).delete()
        return int(deleted)

    def user_login_failed(self, sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None,
                          **kwargs: Any) -> None:
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is not None and getattr(request, "axes_locked_out", False):
            audit_record(
                actor=None, action="signin.locked_out", target=str(get_client_username(request, credentials) or "")[:150],
                detail={"minutes": settings.SIGNIN_LOCKOUT_MINUTES}, address=str(request.axes_ip_address or ""),  # type: ignore[attr-defined]
            )


def lockout_response(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """The lockout page (429). axes passes (response, credentials) or (credentials): unused."""
    minutes = settings.SIGNIN_LOCKOUT_MINUTES
    # Each refused try counts as a failure and restarts the lockout (axes'
    # AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT), so the wait is the whole period again.
    response = render(request, "registration/lockout.html", {"minutes": minutes}, status=429)
    response["Retry-After"] = str(minutes * 60)
    return response
