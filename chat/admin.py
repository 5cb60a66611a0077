"""Conversations in Django's admin: metadata only.

Admins do not read other people's conversations: no titles, no messages, nothing editable.
(Messages are not registered at all.)
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from .models import Conversation


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "project", "model", "message_count", "created_at", "updated_at"]
    list_select_related = ["owner", "project", "model"]
    list_filter = ["archived"]
    search_fields = ["owner__username"]
    fields = ["id", "owner", "project", "model", "created_at", "updated_at"]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        return super().get_queryset(request).annotate(messages_total=Count("messages"))

    @admin.display(description="messages", ordering="messages_total")
    def message_count(self, conversation: Any) -> int:
        return int(conversation.messages_total)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
