"""Sign-ins, successful or not, from every sign-in path (password form, SSO, trusted header)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from .services import audit_record, client_address


@receiver(user_logged_in, dispatch_uid="audit.signin_succeeded")
def _signed_in(sender: Any, request: HttpRequest | None, user: AbstractBaseUser, **kwargs: Any) -> None:
    backend = getattr(user, "backend", "") or ""
    audit_record(
        actor=user,
        action="signin.succeeded",
        target=user.get_username(),
        detail={"backend": backend.rsplit(".", 1)[-1]} if backend else {},
        address=client_address(request),
    )


@receiver(user_login_failed, dispatch_uid="audit.signin_failed")
def _sign_in_failed(sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any) -> None:
    # Django has already masked the password in ``credentials``; only the name is kept.
    username = str(credentials.get("username", ""))[:150]
    audit_record(actor=None, action="signin.failed", target=username, address=client_address(request))
