"""``/healthz`` and ``/readyz``. ``platform.asgi`` sends these paths to a handler without any
middleware, so they answer whatever the Host header is and never touch a session."""

from __future__ import annotations

from django.urls import re_path

from . import views

urlpatterns = [
    re_path(r"^healthz/?$", views.healthz, name="healthz"),
    re_path(r"^readyz/?$", views.readyz, name="readyz"),
]
