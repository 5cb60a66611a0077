"""Sign-in by a header that an authenticating proxy sets, honoured only from that proxy.

Django's remote-user middleware and backend, with one addition: the headers are removed from
any request whose peer (REMOTE_ADDR, the connection itself, not X-Forwarded-For) is not in
TRUSTED_PROXIES, before anything reads them. Such a request is treated as having no header,
which also signs out a session that came from the header. A forged header is written to the
audit log, at most once per address every ten minutes.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.backends import RemoteUserBackend
from django.contrib.auth.middleware import RemoteUserMiddleware
from django.contrib.auth.models import AbstractUser
from django.core.cache import cache
from django.http import HttpRequest

from audit.services import audit_record, client_address

from .claims import Identity, admin_from, group_names
from .services import signin_user_create, signin_user_find, signin_user_sync

SOURCE = "trusted_header"
_FORGED_AUDIT_SECONDS = 600

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def meta_key(header: str) -> str:
    """``X-Forwarded-User`` -> ``HTTP_X_FORWARDED_USER`` (how Django's request.META names it)."""
    return "HTTP_" + header.strip().upper().replace("-", "_")


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def peer_is_trusted_proxy(request: HttpRequest) -> bool:
    try:
        peer = ipaddress.ip_address(str(request.META.get("REMOTE_ADDR") or ""))
    except ValueError:
        return False
    return any(peer in net for net in _networks(tuple(settings.TRUSTED_PROXIES)))


def _header_keys() -> list[str]:
    names = (settings.TRUSTED_HEADER_USER, settings.TRUSTED_HEADER_EMAIL, settings.TRUSTED_HEADER_GROUPS)
    return [meta_key(name) for name in names if name]


def _screen(request: HttpRequest) -> dict[str, str] | None:
    """Drop the sign-in headers unless a trusted proxy sent them; what was dropped, if anything."""
    if peer_is_trusted_proxy(request):
        return None
    forged = {key: str(request.META.pop(key))[:200] for key in _header_keys() if key in request.META}
    return forged or None


def _audit_forged(request: HttpRequest, forged: dict[str, str]) -> None:
    peer = str(request.META.get("REMOTE_ADDR") or "")
    if cache.add(f"signin:forged-header:{peer}", 1, _FORGED_AUDIT_SECONDS):
        audit_record(actor=None, action="signin.header_untrusted", target=forged.get(meta_key(settings.TRUSTED_HEADER_USER), ""),
                     detail={"headers": sorted(forged), "peer": peer}, address=client_address(request))


class TrustedHeaderMiddleware(RemoteUserMiddleware):
    """RemoteUserMiddleware for TRUSTED_HEADER_USER, from TRUSTED_PROXIES only."""

    def __init__(self, get_response: Any) -> None:
        super().__init__(get_response)
        # Django 5.2 reads request.META[header] on the sync path but META["HTTP_" + header]
        # on the async one.
        key = meta_key(settings.TRUSTED_HEADER_USER)
        self.header = key.removeprefix("HTTP_") if self.is_async else key  # type: ignore[misc]

    def process_request(self, request: HttpRequest) -> None:
        forged = _screen(request)
        if forged:
            _audit_forged(request, forged)
        super().process_request(request)

    async def aprocess_request(self, request: HttpRequest) -> None:
        forged = _screen(request)
        if forged:
            await sync_to_async(_audit_forged)(request, forged)
        await super().aprocess_request(request)


class TrustedHeaderBackend(RemoteUserBackend):
    """The account the proxy names, created on first sight if allowed, synced at each sign-in."""

    @property
    def create_unknown_user(self) -> bool:  # type: ignore[override]
        return bool(settings.TRUSTED_HEADER_CREATE_USERS)

    def authenticate(self, request: HttpRequest | None, remote_user: str | None) -> AbstractUser | None:  # type: ignore[override]
        if request is None or not remote_user:
            return None
        # Only what the middleware let through: never from an untrusted peer.
        if not peer_is_trusted_proxy(request):
            return None
        identity = _identity(request, remote_user)
        if identity is None:
            return None
        address = client_address(request)
        user = signin_user_find(username=identity.username)
        if user is None:
            if not self.create_unknown_user:
                return None
            user = signin_user_create(identity=identity, source=SOURCE, create_groups=True, address=address)
        elif user.is_active:
            signin_user_sync(user=user, identity=identity, source=SOURCE, create_groups=True, address=address)
        return user if self.user_can_authenticate(user) else None  # type: ignore[arg-type]

    async def aauthenticate(self, request: HttpRequest | None, remote_user: str | None) -> AbstractUser | None:  # type: ignore[override]
        # Not Django's async twin, which would skip the checks above.
        return await sync_to_async(self.authenticate)(request, remote_user)


def _identity(request: HttpRequest, remote_user: str) -> Identity | None:
    username = remote_user.strip()
    if not username or len(username) > 150:
        return None
    email = str(request.META.get(meta_key(settings.TRUSTED_HEADER_EMAIL), "")) if settings.TRUSTED_HEADER_EMAIL else ""
    groups = (
        group_names(str(request.META.get(meta_key(settings.TRUSTED_HEADER_GROUPS), "")))
        if settings.TRUSTED_HEADER_GROUPS and meta_key(settings.TRUSTED_HEADER_GROUPS) in request.META
        else None
    )
    return Identity(
        username=username,
        email=email.strip()[:254],
        groups=groups,
        is_admin=admin_from(groups=groups, admin_group=settings.TRUSTED_HEADER_ADMIN_GROUP),
    )
