"""Remember which sessions belong to whom, so deactivation can end them all at once."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver
from django.http import HttpRequest

from . import services


@receiver(user_logged_in, dispatch_uid="directory.session_signed_in")
def _signed_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    if session is not None and session.session_key:
        services.session_remember(user=user, session_key=session.session_key)


@receiver(user_logged_out, dispatch_uid="directory.session_signed_out")
def _signed_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    if user is not None and session is not None and session.session_key:
        services.session_forget(session_key=session.session_key)
