"""Routes shared by the web app and the Ollama API, and the API-key pages."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from chat.views import chat_home

from . import selectors, services
from .api.errors import ApiError, Protocol, error_response
from .forms import ApiKeyForm


def _health() -> HttpResponse:
    return HttpResponse("Ollama is running", content_type="text/plain; charset=utf-8")


def _method_not_allowed(request: HttpRequest) -> HttpResponse:
    response = error_response(Protocol.OLLAMA, ApiError(405, f"method {request.method} not allowed"))
    response["Allow"] = "GET, HEAD"
    return response


@csrf_exempt  # nothing here acts on a POST; the exemption lets it answer 405, not a CSRF 403
def root(request: HttpRequest) -> HttpResponse:
    """Browsers get the chat; Ollama clients use ``GET /`` as their health check."""
    if request.method not in ("GET", "HEAD"):
        return _method_not_allowed(request)
    if "text/html" in request.headers.get("Accept", ""):
        return chat_home(request)
    return _health()


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


@never_cache  # the page may show a new key's secret: keep it out of every cache
@login_required
@require_http_methods(["GET", "POST"])
def keys(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, AbstractBaseUser)  # login_required
    form = ApiKeyForm(request.POST or None)
    created = secret = None
    if request.method == "POST" and form.is_valid():
        # Shown in this response only, never stored: a reload cannot show it again.
        created, secret = services.api_key_create(user=request.user, name=form.cleaned_data["name"])
        form = ApiKeyForm()
    base_url = request.build_absolute_uri("/").rstrip("/")
    return render(
        request,
        "keys/keys.html",
        {
            "form": form,
            "keys": selectors.api_keys_for_user(user=request.user),
            "created": created,
            "secret": secret,
            "base_url": base_url,
        },
    )


@login_required
@require_POST
def key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    try:
        api_key = selectors.get_api_key_for_user(user=request.user, key_id=key_id)
    except selectors.ApiKeyNotFound as exc:
        raise Http404 from exc
    services.api_key_revoke(api_key=api_key)
    messages.success(
        request, _("The key “%(name)s” was revoked. Programs using it can no longer connect.") % {"name": api_key.name}
    )
    return redirect("keys")
