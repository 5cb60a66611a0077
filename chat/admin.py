"""Conversations in Django's admin: metadata only.

Admins do not read other people's conversations: no titles, no messages, nothing editable.
(Messages are not registered at all.) An organisation that must can switch on
ADMIN_CAN_READ_CONVERSATIONS: then each row links to a read-only page, and every read is audited.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .models import Conversation


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "project", "model", "message_count", "created_at", "updated_at", "transcript"]
    list_select_related = ["owner", "project", "model"]
    list_filter = ["archived"]
    search_fields = ["owner__username"]
    fields = ("id", "owner", "project", "model", "created_at", "updated_at")
    readonly_fields = ("id", "owner", "project", "model", "created_at", "updated_at")
    # No action checkboxes and no change page: both would show the title (``str(conversation)``),
    # and the bulk "delete" action would delete people's conversations unaudited.
    actions = None
    list_display_links = None

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        return super().get_queryset(request).annotate(messages_total=Count("messages"))

    @admin.display(description=_("messages"), ordering="messages_total")
    def message_count(self, conversation: Any) -> int:
        return int(conversation.messages_total)

    @admin.display(description=_("read"))
    def transcript(self, conversation: Any) -> str:
        """A link to the audited read-only page, only where ADMIN_CAN_READ_CONVERSATIONS is on."""
        if not settings.ADMIN_CAN_READ_CONVERSATIONS:
            return "—"
        return format_html('<a href="{}">{}</a>', f"/admin/conversations/{conversation.id}/", _("read (audited)"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_view_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
