from django.urls import path

from .consumers import ConversationConsumer

websocket_urlpatterns = [
    path("ws/c/<str:conversation_id>/", ConversationConsumer.as_asgi()),
]
