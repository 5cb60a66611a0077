"""Each person's own settings: API keys (created and revoked by their owner) and language."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from audit.services import client_address

from . import selectors, services
from .language import SESSION_KEY, set_language_cookie, supported
from .forms import ApiKeyForm


# The new key's secret waits in the session between the POST and the GET that shows it:
# the redirect means a reload cannot post the form again (a second key), and the GET pops it,
# so it is shown once and then gone from the session too.
_NEW_KEY_SESSION = "accounts.new_api_key"


@never_cache  # the page may show a new key's secret: keep it out of every cache
@login_required
@require_http_methods(["GET", "POST"])
def keys(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, AbstractBaseUser)  # login_required
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        created_key, new_secret = services.api_key_create(
            user=request.user, name=form.cleaned_data["name"], address=client_address(request)
        )
        request.session[_NEW_KEY_SESSION] = {"id": created_key.pk, "secret": new_secret}
        return redirect("keys")
    created = secret = None
    pending = request.session.pop(_NEW_KEY_SESSION, None) if request.method == "GET" else None
    if isinstance(pending, dict) and isinstance(pending.get("id"), int):
        # Only a key that is still this user's and still works (revoked in another tab: nothing).
        created = selectors.api_keys_for_user(user=request.user).filter(pk=pending["id"]).first()
        secret = str(pending.get("secret", "")) if created is not None else None
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
    services.api_key_revoke(api_key=api_key, actor=request.user, address=client_address(request))
    messages.success(
        request, _("The key “%(name)s” was revoked. Programs using it can no longer connect.") % {"name": api_key.name}
    )
    return redirect("keys")


@require_POST
def language_choose(request: HttpRequest) -> HttpResponse:
    """The language switcher: stored with the account when signed in, in a cookie always.

    An empty choice follows the browser again. Back to ``next`` when it is on this site.
    """
    language = request.POST.get("language", "")
    if language and not supported(language):
        return HttpResponse(_("This language is not available."), status=400, content_type="text/plain")
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        target = "/"
    response = redirect(target)
    if request.user.is_authenticated:
        services.language_set(user=request.user, language=language)
        if language:
            request.session[SESSION_KEY] = language
        else:
            request.session.pop(SESSION_KEY, None)
    if language:
        set_language_cookie(response, language)
    else:
        response.delete_cookie(settings.LANGUAGE_COOKIE_NAME, path=settings.LANGUAGE_COOKIE_PATH)
    return response
