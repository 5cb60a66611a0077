"""Admin pages about people's data, mounted under /admin/ (before Django's own admin)."""

from django.urls import path

from .views import data

urlpatterns = [
    path("users/<int:user_id>/data.zip", data.admin_personal_data_export, name="admin_user_data"),
    path("users/<int:user_id>/delete/", data.admin_account_delete, name="admin_user_delete"),
    # Only with ADMIN_CAN_READ_CONVERSATIONS=true (off by default), and every read is audited.
    path("conversations/<str:conversation_id>/", data.admin_conversation_read, name="admin_conversation_read"),
]
