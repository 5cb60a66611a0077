"""The language a person chose, stored with their account and followed on every request.

Django's ``LocaleMiddleware`` picks the language from the cookie, then the browser's
``Accept-Language``. A signed-in person's choice is stored in ``Preferences`` and copied into
the session when they sign in, so following it costs no query per request; the middleware
below activates it and keeps the language cookie in step, which is what the sockets read
(``webio.sockets``) and what the sign-in page shows after signing out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponseBase
from django.utils import translation
from django.utils.decorators import sync_and_async_middleware

SESSION_KEY = "accounts.language"


def supported(language: str) -> bool:
    return language in {code for code, _name in settings.LANGUAGES}


def _follow(request: HttpRequest) -> str | None:
    """Activate the signed-in person's stored language, if any; return it."""
    session = getattr(request, "session", None)
    language = session.get(SESSION_KEY) if session is not None else None
    if language and supported(language):
        translation.activate(language)
        request.LANGUAGE_CODE = language
        return str(language)
    return None


def _keep_cookie(request: HttpRequest, response: HttpResponseBase, language: str | None) -> HttpResponseBase:
    if language and request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) != language:
        set_language_cookie(response, language)
    return response


def set_language_cookie(response: HttpResponseBase, language: str) -> None:
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,  # type: ignore[arg-type]  # "Lax" in settings
    )


@sync_and_async_middleware
def user_language(get_response: Callable[[HttpRequest], Any]) -> Callable[[HttpRequest], Any]:
    """After ``LocaleMiddleware`` and the session: the account's choice wins over the browser's."""
    if iscoroutinefunction(get_response):

        async def async_middleware(request: HttpRequest) -> Any:
            language = _follow(request)
            return _keep_cookie(request, await get_response(request), language)

        return async_middleware

    def middleware(request: HttpRequest) -> Any:
        language = _follow(request)
        return _keep_cookie(request, get_response(request), language)

    return middleware


@receiver(user_logged_in, dispatch_uid="accounts.language_signed_in")
def _signed_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    if session is None:
        return
    from .selectors import language_of  # the selectors import models, not loaded at import time

    language = language_of(user)
    if language:
        session[SESSION_KEY] = language
    else:
        session.pop(SESSION_KEY, None)
