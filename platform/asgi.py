"""ASGI entry point: HTTP through Django, WebSockets through Channels (served by daphne)."""

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

from chat.routing import websocket_urlpatterns as chat_sockets  # noqa: E402
from models_admin.routing import websocket_urlpatterns as models_sockets  # noqa: E402


class _ApiHandler(ASGIHandler):
    """Django for the key-authenticated API, with the lean ``API_MIDDLEWARE`` stack."""

    def load_middleware(self, is_async: bool = False) -> None:
        # Django builds the chain from settings.MIDDLEWARE; swap it only while building.
        with override_settings(MIDDLEWARE=settings.API_MIDDLEWARE):
            super().load_middleware(is_async=is_async)


_api_app = _ApiHandler()
_api_path = re.compile(settings.API_PATH_REGEX)


async def http_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    app = _api_app if _api_path.match(scope["path"]) else django_asgi_app
    await app(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(chat_sockets + models_sockets))),
    }
)
