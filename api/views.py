"""Routes shared by the web app and the Ollama API: the root health check and API 404s."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from .errors import ApiError, Protocol, error_response


def _health() -> HttpResponse:
    return HttpResponse("Ollama is running", content_type="text/plain; charset=utf-8")


def _method_not_allowed(request: HttpRequest) -> HttpResponse:
    response = error_response(Protocol.OLLAMA, ApiError(405, f"method {request.method} not allowed"))
    response["Allow"] = "GET, HEAD"
    return response


def root_view(browser_view: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """``/``: browsers get ``browser_view`` (the chat); Ollama clients use ``GET /`` as their
    health check. The browser view is passed in by the URL wiring, so this app needs no chat."""

    @csrf_exempt  # nothing here acts on a POST; the exemption lets it answer 405, not a CSRF 403
    def root(request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return _method_not_allowed(request)
        if "text/html" in request.headers.get("Accept", ""):
            return browser_view(request)
        return _health()

    return root


@csrf_exempt
def keyed_root(request: HttpRequest, key: str) -> HttpResponse:
    """``GET /u/<key>/``: the health check of clients whose host carries the key. It answers
    without looking at the key, like Ollama's, so it costs no database work."""
    if request.method not in ("GET", "HEAD"):
        return _method_not_allowed(request)
    return _health()


@csrf_exempt
def api_not_found(request: HttpRequest, protocol: str, key: str | None = None) -> HttpResponse:
    kind = Protocol.OPENAI if protocol == "v1" else Protocol.OLLAMA
    return error_response(kind, ApiError(404, f"no such endpoint: {request.path}", code="not_found"))
