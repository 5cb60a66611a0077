"""Routes shared by the web app and the Ollama API."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods

from chat.views import chat_home


@require_http_methods(["GET", "HEAD"])
def root(request: HttpRequest) -> HttpResponse:
    """Browsers get the chat; Ollama clients use ``GET /`` as their health check."""
    if "text/html" in request.headers.get("Accept", ""):
        return chat_home(request)
    return HttpResponse("Ollama is running", content_type="text/plain; charset=utf-8")
