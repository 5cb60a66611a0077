"""Liveness and readiness probes, for Kubernetes, docker compose and load balancers.

- ``GET /healthz`` (liveness): the process is up and its event loop answers. No database,
  channel layer or engine work, so a slow dependency never gets a healthy process restarted.
- ``GET /readyz`` (readiness): the database, the channel layer and the default model's
  engine answer (see ``health.checks``); 200 when all do, 503 otherwise.

No authentication, session, CSRF or host check: ``platform.asgi`` routes these paths past
Django's middleware (probes come from IP addresses that are not in ``ALLOWED_HOSTS``, and over
plain HTTP even when ``SECURE_SSL_REDIRECT`` is on).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_safe

from .checks import readiness


def _answer(body: dict[str, Any], status: int) -> JsonResponse:
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_safe
async def healthz(request: HttpRequest) -> HttpResponse:
    return _answer({"status": "ok"}, 200)


@require_safe
async def readyz(request: HttpRequest) -> HttpResponse:
    checks = await readiness()
    ready = all(check["ok"] for check in checks.values())
    return _answer({"status": "ok" if ready else "fail", "checks": checks}, 200 if ready else 503)
