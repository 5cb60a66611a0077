from django.urls import path

from . import views

app_name = "usage"
urlpatterns = [
    path("admin/usage/", views.dashboard, name="dashboard"),
    path("admin/usage/export.csv", views.export_csv, name="export"),
    path("admin/usage/quotas/", views.quotas, name="quotas"),
    path("admin/usage/quotas/user/<int:user_id>/", views.quota_user, name="quota_user"),
    path("admin/usage/quotas/group/<int:group_id>/", views.quota_group, name="quota_group"),
    path("settings/usage/", views.mine, name="mine"),
]
