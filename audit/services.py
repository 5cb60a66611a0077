"""Recording into the audit log (the only write), and the client address to record."""

from __future__ import annotations

import ipaddress
import logging
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest

from .models import AuditEntry

logger = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# The client of the request being handled; set by ``audit.middleware.request_address``.
current_address: ContextVar[str] = ContextVar("audit_address", default="")


def audit_record(
    *,
    actor: AbstractBaseUser | AnonymousUser | None,
    action: str,
    target: str = "",
    detail: dict[str, Any] | None = None,
    address: str = "",
) -> None:
    """Append one entry. ``actor`` None (or anonymous) is the system or an unknown visitor;
    ``address`` defaults to the client of the request being handled (``audit.middleware``)."""
    address = address or current_address.get()
    known = actor is not None and actor.is_authenticated
    AuditEntry.objects.create(
        actor_id=actor.pk if known else None,  # type: ignore[union-attr]
        actor_name=actor.get_username()[:150] if known else "",  # type: ignore[union-attr]
        action=action[:100],
        target=str(target)[:1000],
        detail=detail or {},
        address=address[:45],
    )


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _is_trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in _networks(tuple(settings.TRUSTED_PROXIES)))


def client_address(request: HttpRequest | None) -> str:
    """REMOTE_ADDR; behind a configured trusted proxy, the address that proxy saw instead.

    X-Forwarded-For is read from the right: each trusted proxy appends the peer it saw, so
    the first address from the right that is not a trusted proxy is the client. A header from
    anyone else is ignored (anyone can send it).
    """
    if request is None:
        return ""
    remote = str(request.META.get("REMOTE_ADDR") or "")
    if not _is_trusted(remote):
        return remote[:45]
    forwarded = [a.strip() for a in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",") if a.strip()]
    for address in reversed(forwarded):
        if not _is_trusted(address):
            return address[:45]
    return remote[:45]
