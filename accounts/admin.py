from django.contrib import admin

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
    list_display = ["created_at", "user", "model_name", "source", "prompt_tokens", "completion_tokens"]
    list_filter = ["source", "model_name"]
    list_select_related = ["user"]
    search_fields = ["user__username", "model_name"]
