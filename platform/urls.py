from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from api.views import root_view
from chat.views.pages import chat_home

urlpatterns = [
    path("", root_view(chat_home), name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("admin/models/", include("models_admin.urls")),
    path("admin/", admin.site.urls),
    # /healthz, /readyz (routed past the middleware by platform.asgi)
    path("", include("health.urls")),
    # /api/*, /v1/*, /u/<key>/...
    path("", include("api.urls")),
    path("", include("accounts.urls")),
    path("", include("projects.urls")),
    path("", include("chat.urls")),
]
