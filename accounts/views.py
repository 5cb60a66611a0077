"""The API-key pages: each person creates and revokes their own keys."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from . import selectors, services
from .forms import ApiKeyForm


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
