"""Read-only views of the audit trail and pulls in Django's admin.

Models and endpoints are changed on /admin/models/ only, so that every change goes through
the services and is audited; the audit records themselves are never editable.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import AdminAction, Pull


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AdminAction)
class AdminActionAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor_name", "action", "target"]
    list_filter = ["action"]
    search_fields = ["actor_name", "target"]
    date_hierarchy = "created_at"


@admin.register(Pull)
class PullAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "model_name", "source", "status", "completed_bytes", "total_bytes", "attempts"]
    list_filter = ["status", "kind"]
    search_fields = ["model_name", "source"]
