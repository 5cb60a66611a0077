"""The users and groups admin pages (/admin/users/, /admin/groups/) and the public doors:
/invite/<token>/, /accounts/register/, /accounts/waiting/, /accounts/reset/..."""

from django.urls import path

from . import views

app_name = "directory"
urlpatterns = [
    path("admin/users/", views.users, name="users"),
    path("admin/users/new/", views.user_new, name="user_new"),
    path("admin/users/search/", views.search, name="search"),
    path("admin/users/invite/", views.invitation_new, name="invitation_new"),
    path("admin/users/invitations/<int:invitation_id>/revoke/", views.invitation_revoke, name="invitation_revoke"),
    path("admin/users/<int:user_id>/", views.user_detail, name="user"),
    path("admin/users/<int:user_id>/admin/", views.user_admin, name="user_admin"),
    path("admin/users/<int:user_id>/deactivate/", views.user_deactivate, name="user_deactivate"),
    path("admin/users/<int:user_id>/reactivate/", views.user_reactivate, name="user_reactivate"),
    path("admin/users/<int:user_id>/reset-link/", views.user_reset_link, name="user_reset_link"),
    path("admin/users/<int:user_id>/groups/", views.user_groups_add, name="user_groups_add"),
    path("admin/users/<int:user_id>/groups/<int:group_id>/remove/", views.user_group_remove, name="user_group_remove"),
    path("admin/users/<int:user_id>/approve/", views.user_approve, name="user_approve"),
    path("admin/users/<int:user_id>/reject/", views.user_reject, name="user_reject"),
    path("admin/groups/", views.groups, name="groups"),
    path("admin/groups/<int:group_id>/", views.group_detail, name="group"),
    path("admin/groups/<int:group_id>/rename/", views.group_rename, name="group_rename"),
    path("admin/groups/<int:group_id>/delete/", views.group_delete, name="group_delete"),
    path("admin/groups/<int:group_id>/members/", views.group_members_add, name="group_members_add"),
    path("admin/groups/<int:group_id>/members/<int:user_id>/remove/", views.group_member_remove, name="group_member_remove"),
    path("invite/<str:token>/", views.invite, name="invite"),
    path("accounts/register/", views.register, name="register"),
    path("accounts/waiting/", views.waiting, name="waiting"),
    path("accounts/reset/done/", views.reset_done, name="reset_done"),
    path("accounts/reset/<uidb64>/<token>/", views.ResetConfirmView.as_view(), name="reset_confirm"),
]
