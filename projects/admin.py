"""Projects in the Django admin: metadata to look up, not a second way to change them.

Membership changes and deletion must go through ``projects.services`` (the last-owner rule,
the open sockets told at once), so the admin adds and edits nothing, and deletes through it.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from . import services
from .models import Membership, Project


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MembershipInline(admin.TabularInline):
    model = Membership
    fields = ("user", "role", "added_at")
    readonly_fields = ("user", "role", "added_at")
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Project)
class ProjectAdmin(ReadOnlyAdmin):
    list_display = ["name", "member_count", "created_by", "created_at", "updated_at"]
    list_select_related = ["created_by"]
    search_fields = ["name", "memberships__user__username"]
    fields = ("name", "description", "instructions", "default_model", "created_by", "created_at", "updated_at")
    readonly_fields = fields
    inlines = [MembershipInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Project]:
        return super().get_queryset(request).annotate(member_count=Count("memberships"))

    @admin.display(description=_("Members"), ordering="member_count")
    def member_count(self, project: Project) -> int:
        return int(getattr(project, "member_count", 0))

    def delete_model(self, request: HttpRequest, obj: Project) -> None:
        services.project_delete(project=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Project]) -> None:
        for project in queryset:
            services.project_delete(project=project)


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    list_display = ["project", "user", "role", "added_at"]
    list_select_related = ["project", "user"]
    list_filter = ["role"]
    search_fields = ["project__name", "user__username"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
