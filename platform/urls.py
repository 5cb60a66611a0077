from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from api.views import root_view
from chat.views.pages import chat_home

urlpatterns = [
    path("", root_view(chat_home), name="home"),
    # /accounts/login/ (password form, SSO button, throttling) and /accounts/sso/start|callback/
    path("accounts/", include("accounts.signin.urls")),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("admin/models/", include("models_admin.urls")),
    path("admin/audit/", include("audit.urls")),
    # /admin/users/<id>/data.zip and /delete/ (personal data, chat/views/data.py)
    path("admin/", include("chat.admin_urls")),
    # /admin/users/, /admin/groups/, /invite/<token>/, /accounts/register/, /accounts/reset/...
    path("", include("directory.urls")),
    # /admin/usage/ (dashboard, quotas, CSV) and /settings/usage/
    path("", include("usage.urls")),
    path("admin/", admin.site.urls),
    # /healthz, /readyz (routed past the middleware by platform.asgi)
    path("", include("health.urls")),
    # /api/*, /v1/*, /u/<key>/...
    path("", include("api.urls")),
    path("", include("accounts.urls")),
    path("", include("projects.urls")),
    path("", include("chat.urls")),
]

# A 500 while the database is unreachable is a 503 "try again" page (or API JSON) instead.
handler500 = "health.errors.server_error"
