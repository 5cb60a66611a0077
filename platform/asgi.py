"""ASGI entry point: HTTP through Django, WebSockets through Channels (served by daphne)."""

import json
import os
import re
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.urls import re_path  # noqa: E402

from chat.routing import websocket_urlpatterns as chat_sockets  # noqa: E402
from models_admin.routing import websocket_urlpatterns as models_sockets  # noqa: E402
from observability.asgi import observed  # noqa: E402
from observability.server import start_metrics_server  # noqa: E402
from webio.asgi import body_limit, socket_guard  # noqa: E402
from webio.backpressure import limit_websocket_backlog, pace_http_responses  # noqa: E402
from webio.sockets import RefuseConsumer  # noqa: E402


class _LeanHandler(ASGIHandler):
    """Django with another middleware list than ``MIDDLEWARE``: the setting named here."""

    middleware_setting = "MIDDLEWARE"

    def load_middleware(self, is_async: bool = False) -> None:
        # Django builds the chain from settings.MIDDLEWARE; swap it only while building.
        with override_settings(MIDDLEWARE=getattr(settings, self.middleware_setting)):
            super().load_middleware(is_async=is_async)


class _ApiHandler(_LeanHandler):
    """Django for the key-authenticated API, with the lean ``API_MIDDLEWARE`` stack."""

    middleware_setting = "API_MIDDLEWARE"


class _HealthHandler(_LeanHandler):
    """Django for ``/healthz`` and ``/readyz`` with no middleware at all (``HEALTH_MIDDLEWARE``):
    probes come from IPs that are not in ALLOWED_HOSTS (no host check), over plain HTTP (no
    SSL redirect), and need no session, CSRF token or login."""

    middleware_setting = "HEALTH_MIDDLEWARE"


_api_app = _ApiHandler()
_api_path = re.compile(settings.API_PATH_REGEX)
_health_app = _HealthHandler()
_health_path = re.compile(settings.HEALTH_PATH_REGEX)


async def http_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path = scope["path"]
    if _health_path.match(path):
        app: ASGIHandler = _health_app
    elif _api_path.match(path):
        app = _api_app
    else:
        app = django_asgi_app
    await app(scope, receive, send)


def _too_large(scope: dict[str, Any]) -> tuple[int, bytes]:
    """413 in the shape of the protocol the path belongs to."""
    from api.errors import ApiError, Protocol, error_body

    path = scope.get("path", "")
    protocol = Protocol.OPENAI if "/v1/" in path else Protocol.OLLAMA
    error = ApiError(413, "request body is too large", code="request_too_large")
    return 413, json.dumps(error_body(protocol, error)).encode()


_http_default = body_limit(http_app, max_bytes=settings.DATA_UPLOAD_MAX_MEMORY_SIZE, refusal=_too_large)
# Imports (Settings → Your data) take an export file of up to IMPORT_MAX_BYTES, plus the form.
_http_import = body_limit(
    http_app, max_bytes=max(settings.DATA_UPLOAD_MAX_MEMORY_SIZE, settings.IMPORT_MAX_BYTES + 65536), refusal=_too_large
)


async def limited_http(scope: dict[str, Any], receive: Any, send: Any) -> None:
    app = _http_import if scope.get("path") == "/import/" else _http_default
    await app(scope, receive, send)


# Any other socket path: accepted and closed with 4404, not URLRouter's ValueError (a 500
# during the handshake, or 1011). See webio/sockets.py for why not a close before accepting.
unknown_socket = re_path(r"", RefuseConsumer.as_asgi())

application = ProtocolTypeRouter(
    {
        "http": observed(limited_http),
        "websocket": observed(
            socket_guard(
                AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter([*chat_sockets, *models_sockets, unknown_socket])))
            )
        ),
    }
)
# daphne has no lifespan events: the metrics listener starts when the application loads.
start_metrics_server()
limit_websocket_backlog(max_bytes=settings.WS_MAX_BACKLOG_BYTES)
pace_http_responses(max_bytes=settings.HTTP_MAX_BACKLOG_BYTES, stall_seconds=settings.HTTP_STALL_SECONDS)
