"""OpenID Connect single sign-on: mozilla-django-oidc with our claims, discovery and pages.

The upstream backend reads every endpoint when it is constructed, and Django constructs every
backend on every sign-in (a password one too) and on every request of a signed-in session:
here the endpoints are read only when a sign-in through the provider actually runs.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views import View
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from audit.services import audit_record, client_address

from .claims import email_domain_allowed, identity_from_claims
from .discovery import ENDPOINTS, ProviderUnavailable, provider_setting
from .services import signin_user_create, signin_user_find, signin_user_sync

logger = logging.getLogger(__name__)

SOURCE = "oidc"
# Why a sign-in through the provider was refused (and whom the provider named), for the page
# the person sees and the audit log; set on the request by the backend.
REFUSAL_ATTRIBUTE = "signin_refusal"
REFUSED_NAME_ATTRIBUTE = "signin_refused_name"


def _settings_value(attr: str, *args: Any) -> Any:
    if attr in ENDPOINTS:
        return provider_setting(attr)
    return import_from_settings(attr, *args)


def _refuse(request: HttpRequest | None, reason: str, username: str = "") -> None:
    if request is not None:
        setattr(request, REFUSAL_ATTRIBUTE, reason)
        setattr(request, REFUSED_NAME_ATTRIBUTE, username)


class OIDCBackend(OIDCAuthenticationBackend):
    """Signs in whoever the provider vouches for: by username claim, with groups and admin."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Not the upstream __init__: it would fetch the discovery document here.
        self.UserModel = get_user_model()

    get_settings = staticmethod(_settings_value)

    # The attributes the upstream code reads, resolved when read.
    @property
    def OIDC_OP_TOKEN_ENDPOINT(self) -> str:  # noqa: N802
        return provider_setting("OIDC_OP_TOKEN_ENDPOINT")

    @property
    def OIDC_OP_USER_ENDPOINT(self) -> str:  # noqa: N802
        return provider_setting("OIDC_OP_USER_ENDPOINT")

    @property
    def OIDC_OP_JWKS_ENDPOINT(self) -> str:  # noqa: N802
        return provider_setting("OIDC_OP_JWKS_ENDPOINT")

    @property
    def OIDC_RP_CLIENT_ID(self) -> str:  # noqa: N802
        return str(settings.OIDC_RP_CLIENT_ID)

    @property
    def OIDC_RP_CLIENT_SECRET(self) -> str:  # noqa: N802
        return str(settings.OIDC_RP_CLIENT_SECRET)

    @property
    def OIDC_RP_SIGN_ALGO(self) -> str:  # noqa: N802
        return str(settings.OIDC_RP_SIGN_ALGO)

    OIDC_RP_IDP_SIGN_KEY = None

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> AbstractUser | None:
        # Only the callback view passes ``nonce``: a password form posted with ?code=&state=
        # in its URL must not start a code exchange.
        if request is None or "nonce" not in kwargs:
            return None
        user: AbstractUser | None = super().authenticate(request, **kwargs)
        return user

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        payload: dict[str, Any] = super().verify_token(token, **kwargs)
        # The upstream check stops at the signature and the nonce; the ID token must also be
        # for this client and from the configured issuer (OpenID Connect Core 3.1.3.7).
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if settings.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("The ID token is not for this client")
        if settings.OIDC_ISSUER and str(payload.get("iss", "")).rstrip("/") != settings.OIDC_ISSUER:
            raise SuspiciousOperation("The ID token is not from the configured issuer")
        return payload

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> dict[str, Any]:
        # Entra ID puts groups in the ID token only; others in the userinfo answer: both count.
        userinfo: dict[str, Any] = super().get_userinfo(access_token, id_token, payload)
        if userinfo.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("The userinfo answer is about someone else")
        return {**payload, **userinfo}

    def _identity(self, claims: dict[str, Any]) -> Any:
        return identity_from_claims(
            claims,
            username_claim=settings.OIDC_USERNAME_CLAIM,
            groups_claim=settings.OIDC_GROUPS_CLAIM,
            admin_group=settings.OIDC_ADMIN_GROUP,
            admin_claim=settings.OIDC_ADMIN_CLAIM,
        )

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        identity = self._identity(claims)
        if identity is None:
            _refuse(self.request, "no_username")
            return False
        if settings.OIDC_ALLOWED_DOMAINS:
            email = claims.get("email")
            if (not isinstance(email, str) or claims.get("email_verified") is False
                    or not email_domain_allowed(email, settings.OIDC_ALLOWED_DOMAINS)):
                _refuse(self.request, "domain", identity.username)
                return False
        return True

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        identity = self._matched = self._identity(claims)
        user = signin_user_find(username=identity.username) if identity else None
        return self.UserModel.objects.filter(pk=user.pk) if user else self.UserModel.objects.none()

    def create_user(self, claims: dict[str, Any]) -> AbstractUser:
        return signin_user_create(identity=self._identity(claims), source=SOURCE,
                                  create_groups=settings.OIDC_CREATE_GROUPS, address=client_address(self.request))

    def update_user(self, user: AbstractUser, claims: dict[str, Any]) -> AbstractUser:
        if not user.is_active:
            return user  # refused by the callback; a deactivated account is left as it is
        return signin_user_sync(user=user, identity=self._identity(claims), source=SOURCE,
                                create_groups=settings.OIDC_CREATE_GROUPS, address=client_address(self.request))

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> AbstractUser | None:
        user: AbstractUser | None = super().get_or_create_user(access_token, id_token, payload)
        if user is None and not getattr(self.request, REFUSAL_ATTRIBUTE, ""):
            identity = getattr(self, "_matched", None)
            _refuse(self.request, "unknown_user", identity.username if identity else "")
        return user


def _enabled() -> None:
    if not settings.OIDC_ENABLED:
        raise Http404()


def failure_page(request: HttpRequest, reason: str, *, status: int) -> HttpResponse:
    return render(
        request,
        "registration/sso_failed.html",
        {"reason": reason, "provider_name": settings.OIDC_PROVIDER_NAME, "local_passwords": settings.LOCAL_PASSWORDS},
        status=status,
    )


class SSOStartView(OIDCAuthenticationRequestView):
    """Sends the browser to the provider (state, nonce and PKCE kept in the session)."""

    def __init__(self, **kwargs: Any) -> None:
        View.__init__(self, **kwargs)  # not the upstream __init__: it reads the endpoints

    get_settings = staticmethod(_settings_value)

    def get(self, request: HttpRequest) -> HttpResponse:
        _enabled()
        try:
            self.OIDC_OP_AUTH_ENDPOINT = provider_setting("OIDC_OP_AUTHORIZATION_ENDPOINT")
        except ProviderUnavailable as exc:
            logger.warning("single sign-on is unavailable: %s", exc)
            return failure_page(request, "unavailable", status=503)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        response: HttpResponse = super().get(request)
        return response


class SSOCallbackView(OIDCAuthenticationCallbackView):
    """Where the provider sends the browser back: sign in, or a page that says why not."""

    get_settings = staticmethod(_settings_value)

    def get(self, request: HttpRequest) -> HttpResponse:
        _enabled()
        try:
            response: HttpResponse = super().get(request)
        except (ProviderUnavailable, requests.RequestException) as exc:
            logger.warning("single sign-on failed talking to the provider: %s", exc)
            return failure_page(request, "unavailable", status=502)
        return response

    def login_failure(self) -> HttpResponse:
        request = self.request
        reason = getattr(request, REFUSAL_ATTRIBUTE, "")
        if not reason:
            user = getattr(self, "user", None)
            if user is not None and not user.is_active:
                reason = "inactive"
            elif request.GET.get("error"):
                reason = "provider_refused"
            elif "code" not in request.GET or "oidc_states" not in request.session:
                reason = "expired"
            else:
                reason = "failed"
        user = getattr(self, "user", None)
        name = user.get_username() if user is not None else getattr(request, REFUSED_NAME_ATTRIBUTE, "")
        audit_record(actor=None, action="signin.sso_refused", target=name, detail={"reason": reason},
                     address=client_address(request))
        return failure_page(request, reason, status=403)


def sso_start_url(next_url: str = "") -> str:
    url = reverse("oidc_authentication_init")
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url
