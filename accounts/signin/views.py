"""The sign-in page: the password form (unless switched off) and the single sign-on button."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse

from .oidc import sso_start_url


class SignInView(LoginView):
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(
            local_passwords=settings.LOCAL_PASSWORDS,
            sso_name=settings.OIDC_PROVIDER_NAME if settings.OIDC_ENABLED else "",
            sso_url=sso_start_url(context.get("next") or "") if settings.OIDC_ENABLED else "",
            trusted_header=bool(settings.TRUSTED_HEADER_USER),
        )
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.LOCAL_PASSWORDS:
            # Nothing is checked, so nothing counts as a failed sign-in either.
            context = self.get_context_data(passwords_refused=True)
            return self.render_to_response(context, status=403)
        return super().post(request, *args, **kwargs)
