from django.urls import path

from . import views

app_name = "projects"

urlpatterns = [
    path("p/", views.project_list, name="list"),
    path("p/new/", views.project_new, name="new"),
    # str, not uuid: an id that is not a UUID gets the same 404 page as someone else's.
    path("p/<str:project_id>/", views.project_detail, name="detail"),
    path("p/<str:project_id>/settings/", views.project_settings, name="settings"),
    path("p/<str:project_id>/retention/", views.project_retention, name="retention"),
    path("p/<str:project_id>/members/", views.member_add, name="member_add"),
    path("p/<str:project_id>/members/<int:user_id>/role/", views.member_role, name="member_role"),
    path("p/<str:project_id>/members/<int:user_id>/remove/", views.member_remove, name="member_remove"),
    path("p/<str:project_id>/transfer/", views.ownership_transfer, name="transfer"),
    path("p/<str:project_id>/delete/", views.project_delete, name="delete"),
    path("p/<str:project_id>/leave/", views.project_leave, name="leave"),
]
