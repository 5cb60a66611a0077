"""The OpenID provider's endpoints: from the settings, else from its discovery document."""

from __future__ import annotations

import threading
from typing import Any

import httpx
from django.conf import settings

# Setting name -> key of the discovery document (OpenID Connect Discovery 1.0, section 3).
ENDPOINTS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}

_lock = threading.Lock()
_documents: dict[str, dict[str, Any]] = {}


class ProviderUnavailable(Exception):
    """The provider's discovery document cannot be read (down, unreachable, or malformed)."""


def discovery_document(issuer: str) -> dict[str, Any]:
    """Fetch ``<issuer>/.well-known/openid-configuration`` once per process (a failure is retried)."""
    with _lock:
        cached = _documents.get(issuer)
        if cached is not None:
            return cached
        url = f"{issuer}/.well-known/openid-configuration"
        try:
            response = httpx.get(url, timeout=settings.OIDC_TIMEOUT, follow_redirects=False)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderUnavailable(f"{url}: {exc}") from exc
        if not isinstance(document, dict):
            raise ProviderUnavailable(f"{url}: not a JSON object")
        # The issuer it names must be the one configured (Discovery 1.0, section 4.3).
        if str(document.get("issuer", "")).rstrip("/") != issuer:
            raise ProviderUnavailable(f"{url} names the issuer {document.get('issuer')!r}, not {issuer!r}")
        _documents[issuer] = document
        return document


def provider_setting(name: str) -> str:
    """An endpoint's URL: the explicit setting, or the discovery document's."""
    explicit = str(getattr(settings, name, "") or "")
    if explicit:
        return explicit
    document = discovery_document(settings.OIDC_ISSUER)
    value = document.get(ENDPOINTS[name])
    if not isinstance(value, str) or not value:
        raise ProviderUnavailable(f"the discovery document of {settings.OIDC_ISSUER} has no {ENDPOINTS[name]}")
    return value


def forget_documents() -> None:
    """Drop the cached documents (tests that start another provider)."""
    with _lock:
        _documents.clear()
