"""Forms of the project pages. Parsing only: the services decide."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from models_admin.models import LLMModel

from .access import UserLike
from .models import Membership, ProjectRole
from .selectors import models_for_project_form
from .services import DESCRIPTION_MAX, INSTRUCTIONS_MAX, NAME_MAX


class ModelChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return obj.label if isinstance(obj, LLMModel) else str(obj)


class ProjectForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=NAME_MAX, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    description = forms.CharField(
        label=_("Description"),
        max_length=DESCRIPTION_MAX,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("What the project is for, shown to its members."),
    )
    instructions = forms.CharField(
        label=_("Instructions"),
        max_length=INSTRUCTIONS_MAX,
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_("The system prompt of every conversation in the project: how the model should answer here."),
    )
    default_model = ModelChoice(
        label=_("Default model"),
        queryset=LLMModel.objects.none(),
        required=False,
        empty_label=_("Each person’s own default"),
        help_text=_("New conversations in the project start with this model."),
    )

    def __init__(self, *args: Any, user: UserLike, current_model: LLMModel | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["default_model"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = models_for_project_form(user=user, current=current_model)


RETENTION_DAYS_MAX = 36500


class RetentionForm(forms.Form):
    """How long the project's conversations are kept; empty follows the installation."""

    retention_days = forms.IntegerField(
        label=_("Delete conversations untouched for (days)"),
        min_value=0,
        max_value=RETENTION_DAYS_MAX,
        required=False,
        widget=forms.NumberInput(attrs={"placeholder": _("The installation’s setting")}),
        help_text=_("Empty: the installation’s policy. 0: keep them forever. Checked every night."),
    )


class MemberAddForm(forms.Form):
    who = forms.CharField(
        label=_("Username or email"),
        max_length=254,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    role = forms.ChoiceField(label=_("Role"), choices=ProjectRole.choices, initial=ProjectRole.EDITOR)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=ProjectRole.choices)


class TransferForm(forms.Form):
    """Pick the member who becomes owner (ids among the project's other members)."""

    member = forms.TypedChoiceField(label=_("New owner"), coerce=int, choices=())

    def __init__(self, *args: Any, members: list[Membership], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["member"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = [(m.user_id, f"{m.user.get_username()} ({ProjectRole(m.role).label})") for m in members]
