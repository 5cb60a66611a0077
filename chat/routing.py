from typing import Any

from django.urls import URLResolver, path
from django.urls.resolvers import RegexPattern

from .consumers import ConversationConsumer, SidebarConsumer

websocket_urlpatterns = [
    path("ws/c/<str:conversation_id>/", ConversationConsumer.as_asgi(), name="conversation_socket"),
    path("ws/home/", SidebarConsumer.as_asgi(), name="home_socket"),
]

_resolver = URLResolver(RegexPattern(r"^/"), websocket_urlpatterns)


def socket_path(name: str, kwargs: dict[str, Any] | None = None) -> str:
    """The path of one of these sockets, as ``reverse`` gives a page's (the chat page's data)."""
    return "/" + _resolver.reverse(name, **(kwargs or {}))
