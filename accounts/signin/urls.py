"""/accounts/login/ and the single sign-on round trip (/accounts/sso/start/, .../callback/).

The names are mozilla-django-oidc's, which its views reverse.
"""

from django.urls import path

from . import oidc, views

urlpatterns = [
    path("login/", views.SignInView.as_view(), name="login"),
    path("sso/start/", oidc.SSOStartView.as_view(), name="oidc_authentication_init"),
    path("sso/callback/", oidc.SSOCallbackView.as_view(), name="oidc_authentication_callback"),
]
