"""Forms of the directory pages. Parsing only: each lists its fields, so anything else posted
(``is_staff``, ``is_superuser``, ``groups`` on a sign-up...) is never read."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.models import Group, User
from django.contrib.auth.password_validation import password_validators_help_text_html
from django.utils.translation import gettext_lazy as _

from accounts.names import MAX_NAMES, find_by_name, split_names
from projects.models import Project, ProjectRole

_NAME_INPUT = {"autocomplete": "off", "spellcheck": "false"}


def _users_by_name(raw: str) -> list[User]:
    names = split_names(raw, spaces=True)
    if len(names) > MAX_NAMES:
        raise forms.ValidationError(_("Name at most %(n)d people at a time.") % {"n": MAX_NAMES})
    users, missing = find_by_name(User.objects.all(), "username", names)
    if missing:
        raise forms.ValidationError(_("Nobody is called %(names)s.") % {"names": ", ".join(missing)})
    return users


def _groups_by_name(raw: str) -> list[Group]:
    names = split_names(raw, spaces=False)
    if len(names) > MAX_NAMES:
        raise forms.ValidationError(_("Name at most %(n)d groups at a time.") % {"n": MAX_NAMES})
    groups, missing = find_by_name(Group.objects.all(), "name", names)
    if missing:
        raise forms.ValidationError(_("There is no group called %(names)s.") % {"names": ", ".join(missing)})
    return groups


class UserFilterForm(forms.Form):
    """The users page's search box and filters (GET)."""

    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("Any status")), ("active", _("Active")), ("pending", _("Waiting for approval")), ("inactive", _("Deactivated"))],
    )
    admin = forms.ChoiceField(
        label=_("Role"), required=False, choices=[("", _("Admins and users")), ("yes", _("Admins")), ("no", _("Not admins"))]
    )
    group = forms.ModelChoiceField(label=_("Group"), required=False, queryset=Group.objects.none(), empty_label=_("Any group"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        group = self.fields["group"]
        assert isinstance(group, forms.ModelChoiceField)
        group.queryset = Group.objects.order_by("name")


class UserCreateForm(forms.Form):
    username = forms.CharField(label=_("Username"), max_length=150, widget=forms.TextInput(attrs=_NAME_INPUT))
    email = forms.EmailField(label=_("Email"), required=False)
    first_name = forms.CharField(label=_("First name"), max_length=150, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=150, required=False)
    password = forms.CharField(
        label=_("Password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("Leave empty to give them a password reset link instead (or for single sign-on)."),
    )


class InvitationForm(forms.Form):
    email = forms.EmailField(label=_("Email (optional)"), required=False, help_text=_("Filled in for them; nothing is sent."))
    note = forms.CharField(label=_("Note for yourself"), required=False, max_length=200)
    days = forms.IntegerField(label=_("Valid for (days)"), min_value=1, max_value=365)
    groups = forms.CharField(
        label=_("Groups"), required=False, max_length=10_000, widget=forms.TextInput(attrs=_NAME_INPUT),
        help_text=_("Group names, separated by commas."),
    )
    projects = forms.CharField(
        label=_("Projects"), required=False, max_length=10_000, widget=forms.TextInput(attrs=_NAME_INPUT),
        help_text=_("Project names, separated by commas."),
    )
    role = forms.ChoiceField(label=_("Role in these projects"), choices=ProjectRole.choices, initial=ProjectRole.EDITOR)

    def clean_groups(self) -> list[Group]:
        return _groups_by_name(self.cleaned_data.get("groups") or "")

    def clean_projects(self) -> list[Project]:
        names = split_names(self.cleaned_data.get("projects") or "", spaces=False)
        if len(names) > MAX_NAMES:
            raise forms.ValidationError(_("Name at most %(n)d projects at a time.") % {"n": MAX_NAMES})
        chosen: list[Project] = []
        for name in names:
            matches = list(Project.objects.filter(name__iexact=name)[:2])
            if not matches:
                raise forms.ValidationError(_("There is no project called %(name)s.") % {"name": name})
            if len(matches) > 1:
                raise forms.ValidationError(
                    _("Several projects are called %(name)s: add the invitee from the project's members page instead.")
                    % {"name": name}
                )
            chosen.append(matches[0])
        return chosen


class _PasswordsForm(forms.Form):
    password1 = forms.CharField(
        label=_("Password"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validators_help_text_html,
    )
    password2 = forms.CharField(
        label=_("Password again"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password1") and data.get("password2") and data["password1"] != data["password2"]:
            self.add_error("password2", _("The two passwords differ."))
        return data


class AccountForm(_PasswordsForm):
    """Choose a username and password: accepting an invitation, or signing up."""

    username = forms.CharField(label=_("Username"), max_length=150, widget=forms.TextInput(attrs={"autocomplete": "username", **_NAME_INPUT}))
    email = forms.EmailField(label=_("Email"), required=False)
    first_name = forms.CharField(label=_("First name"), max_length=150, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=150, required=False)

    field_order = ["username", "email", "first_name", "last_name", "password1", "password2"]


class RegistrationForm(AccountForm):
    email = forms.EmailField(label=_("Email"), help_text=_("So an administrator knows who you are."))


class AddGroupForm(forms.Form):
    """On a user's page: add them to groups by name."""

    groups = forms.CharField(label=_("Add to groups"), max_length=10_000, widget=forms.TextInput(attrs=_NAME_INPUT),
                             help_text=_("Group names, separated by commas."))

    def clean_groups(self) -> list[Group]:
        groups = _groups_by_name(self.cleaned_data.get("groups") or "")
        if not groups:
            raise forms.ValidationError(_("Name a group."))
        return groups


class GroupNameForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=150)


class AddMembersForm(forms.Form):
    usernames = forms.CharField(label=_("Add members"), max_length=10_000, widget=forms.TextInput(attrs=_NAME_INPUT),
                                help_text=_("Usernames, separated by commas or spaces. Type to search."))

    def clean_usernames(self) -> list[User]:
        users = _users_by_name(self.cleaned_data.get("usernames") or "")
        if not users:
            raise forms.ValidationError(_("Name someone to add."))
        return users
