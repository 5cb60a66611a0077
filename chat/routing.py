from django.urls import path

from .consumers import ConversationConsumer, SidebarConsumer

websocket_urlpatterns = [
    path("ws/c/<str:conversation_id>/", ConversationConsumer.as_asgi()),
    path("ws/home/", SidebarConsumer.as_asgi()),
]
