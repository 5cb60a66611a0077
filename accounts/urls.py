from django.urls import path

from . import views

urlpatterns = [
    path("settings/keys/", views.keys, name="keys"),
    path("settings/language/", views.language_choose, name="language"),
    path("settings/keys/<int:key_id>/revoke/", views.key_revoke, name="key_revoke"),
]
