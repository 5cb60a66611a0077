"""The users and groups pages (staff only), and the public doors into an account: an
invitation, a sign-up, the waiting page, a password reset link.

Views authenticate, parse, fetch, call a service, and redirect after every successful POST.
Links shown once (an invitation, a reset link) wait in the session between the POST and the
GET that shows them, as API keys do.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.models import Group, User
from django.contrib.auth.views import PasswordResetConfirmView
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.selectors import user_is_pending
from audit.services import client_address
from models_admin.views import staff_required
from projects.models import Project

from . import selectors, services
from .forms import AccountForm, AddGroupForm, AddMembersForm, GroupNameForm, InvitationForm, RegistrationForm, UserCreateForm, UserFilterForm
from .services import DirectoryError

USERS_PER_PAGE = 50
MEMBERS_PER_PAGE = 50
PENDING_SHOWN = 50
INVITATIONS_SHOWN = 20
_SHOWN_ONCE = "directory.shown_once"
# Accounts made on the public pages sign in with the password they chose; naming the
# backend keeps that true when single sign-on adds backends of its own.
_PASSWORD_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _admin(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # staff_required
    return user


def _not_found(request: HttpRequest) -> HttpResponse:
    return render(request, "404.html", status=404)


def _errors(form: Any) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


def _show_once(request: HttpRequest, kind: str, value: str, **extra: Any) -> None:
    request.session[_SHOWN_ONCE] = {"kind": kind, "value": value, **extra}


def _take_shown_once(request: HttpRequest, kind: str) -> dict[str, Any] | None:
    stored = request.session.get(_SHOWN_ONCE)
    if isinstance(stored, dict) and stored.get("kind") == kind:
        del request.session[_SHOWN_ONCE]
        return stored
    return None


# ---- Users ------------------------------------------------------------------------------------


@never_cache
@staff_required
@require_GET
def users(request: HttpRequest) -> HttpResponse:
    form = UserFilterForm(request.GET or None)
    filters = selectors.UserFilters()
    if form.is_valid():
        group = form.cleaned_data["group"]
        filters = selectors.UserFilters(
            query=form.cleaned_data["q"], status=form.cleaned_data["status"], admin=form.cleaned_data["admin"],
            group=group.pk if group else None,
        )
    page = Paginator(selectors.users_for_admin(filters=filters).prefetch_related("groups"), USERS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    pending = selectors.pending_users()
    return render(
        request,
        "directory/users.html",
        {
            "nav": "users",
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "pending": pending[:PENDING_SHOWN],
            "pending_count": pending.count(),
            "invitations": selectors.invitations_open()[:INVITATIONS_SHOWN],
            "registration_open": settings.REGISTRATION_OPEN,
        },
    )


@staff_required
@require_http_methods(["GET", "POST"])
def user_new(request: HttpRequest) -> HttpResponse:
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = services.user_create(
                by=_admin(request), address=client_address(request), username=data["username"], email=data["email"],
                first_name=data["first_name"], last_name=data["last_name"], password=data["password"] or None,
            )
        except DirectoryError as exc:
            form.add_error(None, exc.message)
        else:
            if data["password"]:
                messages.success(request, _("%(name)s can now sign in.") % {"name": user.username})
            else:
                messages.success(
                    request, _("%(name)s was created without a password: give them a password reset link below.") % {"name": user.username}
                )
            return redirect("directory:user", user_id=user.pk)
    return render(request, "directory/user_new.html", {"nav": "users", "form": form}, status=400 if form.errors else 200)


@never_cache
@staff_required
@require_GET
def user_detail(request: HttpRequest, user_id: int) -> HttpResponse:
    person = selectors.get_user_for_admin(user_id=user_id)
    if person is None:
        return _not_found(request)
    shown = _take_shown_once(request, "reset")
    reset_link = shown["value"] if shown and shown.get("user_id") == person.pk else None
    return render(
        request,
        "directory/user.html",
        {
            "nav": "users",
            "person": person,
            "groups": person.groups.order_by("name"),
            "group_form": AddGroupForm(),
            "reset_link": request.build_absolute_uri(reset_link) if reset_link else None,
            "is_self": person.pk == request.user.pk,
        },
    )


def _user_action(request: HttpRequest, user_id: int) -> User | None:
    return selectors.get_user_for_admin(user_id=user_id)


def _back_to(person: User) -> HttpResponse:
    return redirect("directory:user", user_id=person.pk)


@staff_required
@require_POST
def user_admin(request: HttpRequest, user_id: int) -> HttpResponse:
    """Make (``make=1``) or unmake (``make=0``) an admin: its own action, never a form field."""
    person = _user_action(request, user_id)
    if person is None:
        return _not_found(request)
    make = request.POST.get("make") == "1"
    try:
        services.user_set_admin(user=person, is_admin=make, by=_admin(request), address=client_address(request))
    except DirectoryError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            (_("%(name)s is now an admin.") if make else _("%(name)s is no longer an admin.")) % {"name": person.username},
        )
    return _back_to(person)


@staff_required
@require_POST
def user_deactivate(request: HttpRequest, user_id: int) -> HttpResponse:
    person = _user_action(request, user_id)
    if person is None:
        return _not_found(request)
    try:
        services.user_deactivate(user=person, by=_admin(request), address=client_address(request))
    except DirectoryError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("%(name)s was deactivated and signed out everywhere.") % {"name": person.username})
    return _back_to(person)


@staff_required
@require_POST
def user_reactivate(request: HttpRequest, user_id: int) -> HttpResponse:
    person = _user_action(request, user_id)
    if person is None:
        return _not_found(request)
    services.user_reactivate(user=person, by=_admin(request), address=client_address(request))
    messages.success(request, _("%(name)s can sign in again.") % {"name": person.username})
    return _back_to(person)


@staff_required
@require_POST
def user_reset_link(request: HttpRequest, user_id: int) -> HttpResponse:
    person = _user_action(request, user_id)
    if person is None:
        return _not_found(request)
    try:
        path = services.password_reset_path(user=person, by=_admin(request), address=client_address(request))
    except DirectoryError as exc:
        messages.error(request, exc.message)
    else:
        _show_once(request, "reset", path, user_id=person.pk)
    return _back_to(person)


@staff_required
@require_POST
def user_groups_add(request: HttpRequest, user_id: int) -> HttpResponse:
    person = _user_action(request, user_id)
    if person is None:
        return _not_found(request)
    form = AddGroupForm(request.POST)
    if not form.is_valid():
        messages.error(request, _errors(form))
        return _back_to(person)
    for group in form.cleaned_data["groups"]:
        services.group_members_add(group=group, users=[person], by=_admin(request), address=client_address(request))
    return _back_to(person)


@staff_required
@require_POST
def user_group_remove(request: HttpRequest, user_id: int, group_id: int) -> HttpResponse:
    person = _user_action(request, user_id)
    group = selectors.get_group(group_id=group_id)
    if person is None or group is None:
        return _not_found(request)
    services.group_member_remove(group=group, user=person, by=_admin(request), address=client_address(request))
    return _back_to(person)


def _decide_registration(request: HttpRequest, user_id: int, *, approve: bool) -> HttpResponse:
    """Approve or refuse a waiting sign-up; back to the approval list either way."""
    person = _user_action(request, user_id)
    if person is None:
        return _not_found(request)
    decide = services.registration_approve if approve else services.registration_reject
    try:
        decide(user=person, by=_admin(request), address=client_address(request))
    except DirectoryError as exc:
        messages.error(request, exc.message)
    else:
        done = (
            _("%(name)s was approved and can use the platform.")
            if approve
            else _("The sign-up of %(name)s was refused and removed.")
        )
        messages.success(request, done % {"name": person.username})
    return redirect(reverse("directory:users") + "#approval")


@staff_required
@require_POST
def user_approve(request: HttpRequest, user_id: int) -> HttpResponse:
    return _decide_registration(request, user_id, approve=True)


@staff_required
@require_POST
def user_reject(request: HttpRequest, user_id: int) -> HttpResponse:
    return _decide_registration(request, user_id, approve=False)


@staff_required
@require_GET
def search(request: HttpRequest) -> JsonResponse:
    """Suggestions for the pickers' datalists: ``kind`` users, groups or projects."""
    kind, query = request.GET.get("kind", "users"), request.GET.get("q", "")
    if kind == "groups":
        items = selectors.group_suggestions(query=query)
    elif kind == "projects":
        names = Project.objects.filter(name__icontains=query.strip()[:100]).order_by("name").values_list("name", flat=True)
        items = [{"value": n, "label": ""} for n in names[: selectors.SUGGESTIONS]] if query.strip() else []
    elif kind == "users":
        items = selectors.user_suggestions(query=query)
    else:
        return JsonResponse({"error": _("Unknown kind of search."), "code": "invalid"}, status=400)
    return JsonResponse({"items": items})


# ---- Invitations ------------------------------------------------------------------------------


@never_cache
@staff_required
@require_http_methods(["GET", "POST"])
def invitation_new(request: HttpRequest) -> HttpResponse:
    form = InvitationForm(request.POST or None, initial={"days": settings.INVITATION_DAYS})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            invitation, token = services.invitation_create(
                by=_admin(request), address=client_address(request), email=data["email"], note=data["note"], days=data["days"],
                groups=data["groups"], projects=[(p, data["role"]) for p in data["projects"]],
            )
        except DirectoryError as exc:
            form.add_error(None, exc.message)
        else:
            _show_once(request, "invite", reverse("directory:invite", kwargs={"token": token}), invitation_id=invitation.pk)
            return redirect("directory:invitation_new")
    shown = _take_shown_once(request, "invite") if request.method == "GET" else None
    return render(
        request,
        "directory/invite_new.html",
        {"nav": "users", "form": form, "link": request.build_absolute_uri(shown["value"]) if shown else None},
        status=400 if form.errors else 200,
    )


@staff_required
@require_POST
def invitation_revoke(request: HttpRequest, invitation_id: int) -> HttpResponse:
    invitation = selectors.invitations_open().filter(pk=invitation_id).first()
    if invitation is None:
        return _not_found(request)
    services.invitation_revoke(invitation=invitation, by=_admin(request), address=client_address(request))
    messages.success(request, _("The invitation was revoked; its link no longer works."))
    return redirect(reverse("directory:users") + "#invitations")


_GONE = {
    "used": _("This invitation has already been used. Sign in with the account it created, or ask for a new one."),
    "revoked": _("This invitation was withdrawn. Ask an administrator for a new one."),
    "expired": _("This invitation has expired. Ask an administrator for a new one."),
}


@never_cache
@require_http_methods(["GET", "POST"])
def invite(request: HttpRequest, token: str) -> HttpResponse:
    """The invitee chooses a username and password and lands in the chat."""
    try:
        invitation = selectors.invitation_for_token(token=token)
    except selectors.InvitationNotFound:
        return render(request, "directory/invite_gone.html",
                      {"message": _("This invitation link is not valid. Check that you copied all of it.")}, status=404)
    except selectors.InvitationGone as exc:
        return render(request, "directory/invite_gone.html", {"message": _GONE[exc.reason]}, status=410)
    if request.user.is_authenticated:
        return render(request, "directory/invite_gone.html",
                      {"message": _("You are signed in already. Sign out first to accept an invitation for someone else."),
                       "signed_in": True}, status=409)
    form = AccountForm(request.POST or None, initial={"email": invitation.email})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = services.invitation_accept(
                invitation=invitation, username=data["username"], password=data["password1"], email=data["email"],
                first_name=data["first_name"], last_name=data["last_name"], address=client_address(request),
            )
        except DirectoryError as exc:
            form.add_error(None, exc.message)
        else:
            login(request, user, backend=_PASSWORD_BACKEND)
            return redirect("home")
    return render(request, "directory/invite.html", {"form": form, "invitation": invitation}, status=400 if form.errors else 200)


# ---- Self-registration ------------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
def register(request: HttpRequest) -> HttpResponse:
    if not settings.REGISTRATION_OPEN:
        raise Http404
    if request.user.is_authenticated:
        return redirect("home")
    form = RegistrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = services.registration_create(
                username=data["username"], email=data["email"], password=data["password1"], first_name=data["first_name"],
                last_name=data["last_name"], address=client_address(request),
            )
        except DirectoryError as exc:
            form.add_error(None, exc.message)
        else:
            login(request, user, backend=_PASSWORD_BACKEND)
            return redirect("directory:waiting")
    return render(request, "directory/register.html", {"form": form}, status=400 if form.errors else 200)


@never_cache
@require_GET
def waiting(request: HttpRequest) -> HttpResponse:
    """What a signed-up account sees until an administrator approves it."""
    if not request.user.is_authenticated:
        return redirect("login")
    if not user_is_pending(user=request.user):
        return redirect("home")
    return render(request, "directory/waiting.html")


class ResetConfirmView(PasswordResetConfirmView):
    """Django's reset confirmation in the platform's look; afterwards, the sign-in page."""

    template_name = "directory/reset_confirm.html"
    success_url = reverse_lazy("directory:reset_done")


@require_GET
def reset_done(request: HttpRequest) -> HttpResponse:
    return render(request, "directory/reset_done.html")


# ---- Groups -----------------------------------------------------------------------------------


@never_cache
@staff_required
@require_http_methods(["GET", "POST"])
def groups(request: HttpRequest) -> HttpResponse:
    form = GroupNameForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            group = services.group_create(name=form.cleaned_data["name"], by=_admin(request), address=client_address(request))
        except DirectoryError as exc:
            form.add_error("name", exc.message)
        else:
            messages.success(request, _("Created the group “%(name)s”.") % {"name": group.name})
            return redirect("directory:group", group_id=group.pk)
    query = request.GET.get("q", "")
    page = Paginator(selectors.groups_for_admin(query=query), USERS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "directory/groups.html", {"nav": "groups", "form": form, "page": page, "q": query,
                                                     "query": urlencode({"q": query}) if query else ""},
                  status=400 if form.errors else 200)


@never_cache
@staff_required
@require_GET
def group_detail(request: HttpRequest, group_id: int) -> HttpResponse:
    group = selectors.get_group(group_id=group_id)
    if group is None:
        return _not_found(request)
    query = request.GET.get("q", "")
    page = Paginator(selectors.group_members(group=group, query=query), MEMBERS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "directory/group.html",
        {
            "nav": "groups", "group": group, "page": page, "q": query, "query": urlencode({"q": query}) if query else "",
            "rename_form": GroupNameForm(initial={"name": group.name}), "add_form": AddMembersForm(),
            "member_count": group.user_set.count(),
            "models": group.allowed_models.order_by("name", "tag"),
        },
    )


def _group_or_none(group_id: int) -> Group | None:
    return selectors.get_group(group_id=group_id)


@staff_required
@require_POST
def group_rename(request: HttpRequest, group_id: int) -> HttpResponse:
    group = _group_or_none(group_id)
    if group is None:
        return _not_found(request)
    form = GroupNameForm(request.POST)
    if not form.is_valid():
        messages.error(request, _errors(form))
    else:
        try:
            services.group_rename(group=group, name=form.cleaned_data["name"], by=_admin(request), address=client_address(request))
        except DirectoryError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Renamed the group."))
    return redirect("directory:group", group_id=group.pk)


@staff_required
@require_POST
def group_delete(request: HttpRequest, group_id: int) -> HttpResponse:
    group = _group_or_none(group_id)
    if group is None:
        return _not_found(request)
    name = group.name
    services.group_delete(group=group, by=_admin(request), address=client_address(request))
    messages.success(request, _("Deleted the group “%(name)s”.") % {"name": name})
    return redirect("directory:groups")


@staff_required
@require_POST
def group_members_add(request: HttpRequest, group_id: int) -> HttpResponse:
    group = _group_or_none(group_id)
    if group is None:
        return _not_found(request)
    form = AddMembersForm(request.POST)
    if not form.is_valid():
        messages.error(request, _errors(form))
    else:
        added = services.group_members_add(group=group, users=form.cleaned_data["usernames"], by=_admin(request),
                                           address=client_address(request))
        messages.success(request, ngettext("Added %(n)d member.", "Added %(n)d members.", len(added)) % {"n": len(added)})
    return redirect("directory:group", group_id=group.pk)


@staff_required
@require_POST
def group_member_remove(request: HttpRequest, group_id: int, user_id: int) -> HttpResponse:
    group = _group_or_none(group_id)
    person = selectors.get_user_for_admin(user_id=user_id)
    if group is None or person is None:
        return _not_found(request)
    services.group_member_remove(group=group, user=person, by=_admin(request), address=client_address(request))
    messages.success(request, _("%(name)s was removed from the group.") % {"name": person.username})
    return redirect("directory:group", group_id=group.pk)
