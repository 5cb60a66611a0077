"""Admin pages for the model registry, mounted at /admin/models/."""

from django.urls import path

from . import views

app_name = "models_admin"
urlpatterns = [
    path("", views.index, name="index"),
    path("table/", views.models_table, name="table"),
    path("pull/", views.pull_create, name="pull"),
    path("pull/<int:pull_id>/cancel/", views.pull_cancel, name="pull_cancel"),
    path("estimate/", views.estimate, name="estimate"),
    path("create/", views.model_create, name="create"),
    path("<int:model_id>/default/", views.model_default, name="default"),
    path("<int:model_id>/delete/", views.model_delete, name="delete"),
    path("<int:model_id>/context/", views.model_context, name="context"),
    path("<int:model_id>/copy/", views.model_copy, name="copy"),
    path("<int:model_id>/access/", views.model_access, name="access"),
    path("endpoints/", views.endpoint_add, name="endpoint_add"),
    path("endpoints/<int:endpoint_id>/delete/", views.endpoint_delete, name="endpoint_delete"),
    path("endpoints/<int:endpoint_id>/check/", views.endpoint_check, name="endpoint_check"),
]
