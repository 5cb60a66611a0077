"""Admin pages for the model registry (filled in by the model-management work)."""

from django.urls import path  # noqa: F401

app_name = "models_admin"
urlpatterns: list = []
