from django.urls import path

from .consumers import ModelsAdminConsumer

websocket_urlpatterns = [
    path("ws/admin/models/", ModelsAdminConsumer.as_asgi()),
]
