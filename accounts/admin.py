from django.contrib import admin
from django.http import HttpRequest

from .models import ApiKey, UsageRecord


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Admins can see and revoke keys (set "revoked at"); secrets exist only as hashes."""

    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    list_select_related = ["user"]
    search_fields = ["name", "prefix", "user__username"]
    readonly_fields = ["user", "prefix", "hashed_key", "created_at", "last_used_at"]
    fields = ["user", "name", "prefix", "hashed_key", "created_at", "last_used_at", "revoked_at"]

    def has_add_permission(self, request: object) -> bool:
        return False  # keys are made by their owner (web page) or with `manage.py create_api_key`


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    """Read only: usage is what the platform measured, never edited by hand (the dashboard at
    /admin/usage/ is the place to look at it)."""

    list_display = ["created_at", "user", "model_name", "source", "prompt_tokens", "completion_tokens", "outcome"]
    list_filter = ["source", "outcome"]
    list_select_related = ["user"]
    search_fields = ["user__username", "model_name"]
    show_full_result_count = False  # no COUNT(*) over millions of rows on every page

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
