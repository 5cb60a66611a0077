"""The project pages: authenticate, fetch through ``projects.access``, call a service, respond.

Every successful POST redirects (a reload does not repeat it); a refused one shows the same
page again with the reason and a 400. Outsiders get the ordinary 404 page everywhere, members
without the role an action needs a 403 page that says which role it needs.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.services import client_address

from . import selectors, services
from .access import ProjectForbidden, ProjectNotFound, at_least, get_project
from .forms import MemberAddForm, MemberRoleForm, ProjectForm, RetentionForm, TransferForm
from .models import Membership, Project, ProjectRole

ProjectView = Callable[..., HttpResponse]

# The new-owner picker lists at most this many members (a select, not a search).
TRANSFER_CHOICES_MAX = 500


def _user(request: HttpRequest) -> User:
    """The user of a ``login_required`` view."""
    assert isinstance(request.user, User)
    return request.user


def with_project(needed: ProjectRole) -> Callable[[ProjectView], ProjectView]:
    """Fetch the project named in the URL through the one access helper, or answer 404/403."""

    def decorator(view: ProjectView) -> ProjectView:
        @wraps(view)
        def wrapper(request: HttpRequest, project_id: str, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                project, role = get_project(user=request.user, project_id=project_id, needed=needed)
            except ProjectNotFound:
                return render(request, "404.html", status=404)
            except ProjectForbidden as exc:
                return render(request, "projects/403.html", {"reason": exc.message}, status=403)
            return view(request, project, role, *args, **kwargs)

        return wrapper

    return decorator


def _member_or_none(project: Project, user_id: int) -> Membership | None:
    return Membership.objects.select_related("user").filter(project=project, user_id=user_id).first()


# --- My projects and new ones --------------------------------------------------------------


@login_required
@require_GET
def project_list(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    return render(
        request,
        "projects/list.html",
        {
            "page": selectors.my_projects_page(user=user, page=request.GET.get("page")),
            "form": ProjectForm(user=user),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def project_new(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = ProjectForm(request.POST or None, user=user)
    if request.method == "POST":
        if form.is_valid():
            try:
                project = services.project_create(
                    creator=user,
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                    instructions=form.cleaned_data["instructions"],
                    default_model=form.cleaned_data["default_model"],
                )
            except services.ProjectError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, _("The project “%(name)s” was created.") % {"name": project.name})
                return redirect("projects:detail", project_id=project.id)
        return render(request, "projects/new.html", {"form": form}, status=400)
    return render(request, "projects/new.html", {"form": form})


# --- One project ------------------------------------------------------------------------------


@login_required
@require_GET
@with_project(ProjectRole.VIEWER)
def project_detail(request: HttpRequest, project: Project, role: ProjectRole) -> HttpResponse:
    members = selectors.project_members(project=project)
    return render(
        request,
        "projects/detail.html",
        {
            "project": project,
            "role": role,
            "can_write": at_least(role, ProjectRole.EDITOR),
            "is_owner": role == ProjectRole.OWNER,
            "page": selectors.project_conversations_page(project=project, page=request.GET.get("page")),
            "members": members[: selectors.MEMBERS_PER_PAGE],
            "member_count": members.count(),
        },
    )


def _settings_page(
    request: HttpRequest,
    project: Project,
    *,
    status: int = 200,
    form: ProjectForm | None = None,
    add_form: MemberAddForm | None = None,
    transfer_form: TransferForm | None = None,
    retention_form: RetentionForm | None = None,
    error: str = "",
) -> HttpResponse:
    user = _user(request)
    others = list(
        selectors.project_members(project=project).exclude(user_id=user.pk)[:TRANSFER_CHOICES_MAX]
    )
    if form is None:
        form = ProjectForm(
            user=user,
            current_model=project.default_model,
            initial={
                "name": project.name,
                "description": project.description,
                "instructions": project.instructions,
                "default_model": project.default_model,
            },
        )
    return render(
        request,
        "projects/settings.html",
        {
            "project": project,
            "form": form,
            "add_form": add_form or MemberAddForm(),
            "transfer_form": transfer_form or TransferForm(members=others),
            "retention_form": retention_form or RetentionForm(initial={"retention_days": project.retention_days}),
            "retention_default": settings.RETENTION_DAYS,
            "members_page": selectors.project_members_page(project=project, page=request.GET.get("members")),
            "roles": ProjectRole.choices,
            "can_transfer": bool(others),
            "error": error,
            "me": user.pk,
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
@with_project(ProjectRole.OWNER)
def project_settings(request: HttpRequest, project: Project, role: ProjectRole) -> HttpResponse:
    if request.method == "GET":
        return _settings_page(request, project)
    user = _user(request)
    form = ProjectForm(request.POST, user=user, current_model=project.default_model)
    if form.is_valid():
        try:
            services.project_update(
                project=project,
                actor=user,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                instructions=form.cleaned_data["instructions"],
                default_model=form.cleaned_data["default_model"],
            )
        except services.ProjectError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("The project was saved."))
            return redirect("projects:settings", project_id=project.id)
    return _settings_page(request, project, status=400, form=form)


@login_required
@require_POST
@with_project(ProjectRole.OWNER)
def project_retention(request: HttpRequest, project: Project, role: ProjectRole) -> HttpResponse:
    form = RetentionForm(request.POST)
    if form.is_valid():
        services.project_retention_set(
            project=project, actor=_user(request), retention_days=form.cleaned_data["retention_days"],
            address=client_address(request),
        )
        messages.success(request, _("The retention policy was saved."))
        return redirect("projects:settings", project_id=project.id)
    return _settings_page(request, project, status=400, retention_form=form)


@login_required
@require_POST
@with_project(ProjectRole.OWNER)
def member_add(request: HttpRequest, project: Project, role: ProjectRole) -> HttpResponse:
    form = MemberAddForm(request.POST)
    if form.is_valid():
        try:
            person = selectors.user_by_name_or_email(who=form.cleaned_data["who"])
            services.member_add(project=project, user=person, role=form.cleaned_data["role"])
        except selectors.UserNotFound as exc:
            form.add_error("who", exc.message)
        except services.ProjectError as exc:
            form.add_error("who", exc.message)
        else:
            messages.success(
                request,
                _("%(name)s joined the project as %(role)s.")
                % {"name": person.get_username(), "role": ProjectRole(form.cleaned_data["role"]).label.lower()},
            )
            return redirect("projects:settings", project_id=project.id)
    return _settings_page(request, project, status=400, add_form=form)


@login_required
@require_POST
@with_project(ProjectRole.OWNER)
def member_role(request: HttpRequest, project: Project, role: ProjectRole, user_id: int) -> HttpResponse:
    membership = _member_or_none(project, user_id)
    if membership is None:
        return render(request, "404.html", status=404)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        return _settings_page(request, project, status=400, error=_("Choose a role: viewer, editor or owner."))
    try:
        services.member_set_role(project=project, user=membership.user, role=form.cleaned_data["role"])
    except services.ProjectError as exc:
        return _settings_page(request, project, status=400, error=exc.message)
    new_role = ProjectRole(form.cleaned_data["role"])
    messages.success(
        request,
        _("%(name)s is now %(role)s.") % {"name": membership.user.get_username(), "role": new_role.label.lower()},
    )
    if membership.user_id == _user(request).pk and new_role != ProjectRole.OWNER:
        return redirect("projects:detail", project_id=project.id)  # the settings are no longer theirs
    return redirect("projects:settings", project_id=project.id)


@login_required
@require_POST
@with_project(ProjectRole.OWNER)
def member_remove(request: HttpRequest, project: Project, role: ProjectRole, user_id: int) -> HttpResponse:
    membership = _member_or_none(project, user_id)
    if membership is None:
        return render(request, "404.html", status=404)
    try:
        services.member_remove(project=project, user=membership.user)
    except services.ProjectError as exc:
        return _settings_page(request, project, status=400, error=exc.message)
    messages.success(request, _("%(name)s was removed from the project.") % {"name": membership.user.get_username()})
    if membership.user_id == _user(request).pk:
        return redirect("projects:list")
    return redirect("projects:settings", project_id=project.id)


@login_required
@require_POST
@with_project(ProjectRole.OWNER)
def ownership_transfer(request: HttpRequest, project: Project, role: ProjectRole) -> HttpResponse:
    user = _user(request)
    others = list(selectors.project_members(project=project).exclude(user_id=user.pk)[:TRANSFER_CHOICES_MAX])
    form = TransferForm(request.POST, members=others)
    if not form.is_valid():
        return _settings_page(request, project, status=400, transfer_form=form)
    membership = next(m for m in others if m.user_id == form.cleaned_data["member"])
    try:
        services.ownership_transfer(project=project, from_user=user, to_user=membership.user)
    except services.ProjectError as exc:
        return _settings_page(request, project, status=400, error=exc.message)
    messages.success(
        request, _("%(name)s is now the owner; you are an editor.") % {"name": membership.user.get_username()}
    )
    return redirect("projects:detail", project_id=project.id)


@login_required
@require_http_methods(["GET", "POST"])
@with_project(ProjectRole.OWNER)
def project_delete(request: HttpRequest, project: Project, role: ProjectRole) -> HttpResponse:
    if request.method == "GET":
        return render(
            request,
            "projects/delete.html",
            {"project": project, "conversation_count": project.conversations.count()},
        )
    name = project.name
    services.project_delete(project=project)
    messages.success(
        request,
        _("The project “%(name)s” was deleted. Its conversations went back to their authors.") % {"name": name},
    )
    return redirect("projects:list")


@login_required
@require_http_methods(["GET", "POST"])
@with_project(ProjectRole.VIEWER)
def project_leave(request: HttpRequest, project: Project, role: ProjectRole) -> HttpResponse:
    if request.method == "GET":
        return render(request, "projects/leave.html", {"project": project, "role": role})
    try:
        services.project_leave(project=project, user=_user(request))
    except services.ProjectError as exc:
        return render(request, "projects/leave.html", {"project": project, "role": role, "error": exc.message}, status=400)
    messages.success(request, _("You left the project “%(name)s”.") % {"name": project.name})
    return redirect("projects:list")
