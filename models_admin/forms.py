"""Forms of the admin models page. Parsing only: the services decide."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils.translation import gettext_lazy as _

from accounts.names import MAX_NAMES, find_by_name, split_names
from inference import parameters

from .models import Access, LLMModel, ModelStatus


class PullForm(forms.Form):
    source = forms.CharField(
        label=_("Model to pull"),
        max_length=1000,
        widget=forms.TextInput(attrs={"placeholder": "hf.co/bartowski/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M", "autocomplete": "off", "spellcheck": "false"}),
    )
    model_name = forms.CharField(
        label=_("Register as (optional)"),
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "qwen2.5:0.5b", "autocomplete": "off", "spellcheck": "false"}),
    )


class EstimateForm(forms.Form):
    source = forms.CharField(max_length=1000, required=False)
    model = forms.IntegerField(required=False)
    context_length = forms.IntegerField(required=False, min_value=256, max_value=10_000_000)
    parallel = forms.IntegerField(required=False, min_value=1, max_value=1024)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("source") and not data.get("model"):
            raise forms.ValidationError(_("Name a model or a source to estimate."))
        return data


class CopyForm(forms.Form):
    destination = forms.CharField(label=_("New name"), max_length=200)


# Names one "add" box may carry: enough to paste a team, not an unbounded lookup.
def _audience_users() -> Any:
    """Who may be named on a model: active users without admin rights (admins use every model)."""
    return get_user_model().objects.filter(is_active=True, is_staff=False).order_by("username")


class AccessForm(forms.Form):
    """Who may use a model. The selected users and groups are posted as ids (the boxes of
    the current selection) plus names typed into the "add" boxes, looked up by name: the
    page never lists every user or group of the installation."""

    access = forms.ChoiceField(label=_("Who may use this model"), choices=Access.choices, widget=forms.RadioSelect)
    users = forms.ModelMultipleChoiceField(
        label=_("Selected users"),
        queryset=get_user_model().objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    add_users = forms.CharField(
        label=_("Add users"),
        required=False,
        max_length=10_000,
        help_text=_("Usernames, separated by commas or spaces. Type to search."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    groups = forms.ModelMultipleChoiceField(
        label=_("Members of selected groups"),
        queryset=Group.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    add_groups = forms.CharField(
        label=_("Add groups"),
        required=False,
        max_length=10_000,
        help_text=_("Group names, separated by commas. Type to search."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    projects = forms.ModelMultipleChoiceField(
        label=_("Members of selected projects"),
        queryset=LLMModel.objects.none(),  # replaced in __init__ by the projects
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Every member of a selected project may use the model, whatever their role."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        users = self.fields["users"]
        assert isinstance(users, forms.ModelMultipleChoiceField)
        users.queryset = _audience_users()
        groups = self.fields["groups"]
        assert isinstance(groups, forms.ModelMultipleChoiceField)
        groups.queryset = Group.objects.order_by("name")
        projects = self.fields["projects"]
        assert isinstance(projects, forms.ModelMultipleChoiceField)
        # The project model through the relation: models_admin must not import projects.
        project_model = LLMModel._meta.get_field("allowed_projects").related_model
        assert not isinstance(project_model, str)
        projects.queryset = project_model._default_manager.order_by("name")

    def clean_add_users(self) -> list[Any]:
        names = split_names(self.cleaned_data.get("add_users") or "", spaces=True)
        if len(names) > MAX_NAMES:
            raise forms.ValidationError(_("Add at most %(n)d users at a time.") % {"n": MAX_NAMES})
        users, missing = find_by_name(_audience_users(), "username", names)
        if missing:
            raise forms.ValidationError(
                _("No active user without admin rights is called %(names)s.") % {"names": ", ".join(missing)}
            )
        return users

    def clean_add_groups(self) -> list[Group]:
        names = split_names(self.cleaned_data.get("add_groups") or "", spaces=False)
        if len(names) > MAX_NAMES:
            raise forms.ValidationError(_("Add at most %(n)d groups at a time.") % {"n": MAX_NAMES})
        groups, missing = find_by_name(Group.objects.all(), "name", names)
        if missing:
            raise forms.ValidationError(_("There is no group called %(names)s.") % {"names": ", ".join(missing)})
        return groups

    def user_ids(self) -> list[int]:
        """The selection after a valid POST: the kept boxes and the added names."""
        chosen = list(self.cleaned_data["users"]) + self.cleaned_data["add_users"]
        return sorted({int(u.pk) for u in chosen})

    def group_ids(self) -> list[int]:
        chosen = list(self.cleaned_data["groups"]) + self.cleaned_data["add_groups"]
        return sorted({int(g.pk) for g in chosen})

    def selected(self, name: str) -> list[Any]:
        """The current selection of ``users`` or ``groups``, to show as ticked boxes (never
        the whole table): the posted ids when bound, else the initial objects."""
        if self.is_bound:
            posted = self.data.getlist(name) if hasattr(self.data, "getlist") else []
            raw = [v for v in posted if str(v).isdecimal() and len(str(v)) < 19]
            queryset: Any = _audience_users() if name == "users" else Group.objects.order_by("name")
            return list(queryset.filter(pk__in=raw))
        return list(self.initial.get(name) or [])


class ContextForm(forms.Form):
    """The context one chat with a model gets; empty: the platform's default."""

    context_length = forms.IntegerField(
        label=_("Context per chat (tokens)"),
        required=False,
        min_value=int(parameters.BY_OLLAMA["num_ctx"].minimum or 16),
        max_value=int(parameters.BY_OLLAMA["num_ctx"].maximum or 10_000_000),
    )


def _numeric_field(parameter: parameters.Parameter) -> forms.Field:
    if parameter.kind == "int":
        return forms.IntegerField(
            label=parameter.label,
            help_text=parameter.help,
            required=False,
            min_value=None if parameter.minimum is None else int(parameter.minimum),
            max_value=None if parameter.maximum is None else int(parameter.maximum),
        )
    return forms.FloatField(
        label=parameter.label,
        help_text=parameter.help,
        required=False,
        min_value=parameter.minimum,
        max_value=parameter.maximum,
    )


class CreateModelForm(forms.Form):
    """A custom model: Ollama's Modelfile as a form (FROM, SYSTEM, PARAMETER, TEMPLATE)."""

    name = forms.CharField(
        label=_("Name"), max_length=200, widget=forms.TextInput(attrs={"placeholder": "support-bot:latest", "spellcheck": "false"})
    )
    base = forms.ChoiceField(label=_("Base model"))
    system = forms.CharField(label=_("System prompt"), required=False, widget=forms.Textarea(attrs={"rows": 5}))
    stop = forms.CharField(
        label=_("Stop sequences (one per line)"), required=False, widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"})
    )
    template = forms.CharField(
        label=_("Chat template (Jinja, optional)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false", "class": "code-input"}),
    )

    # The numeric parameters offered here, in this order; names, ranges and help come from
    # the one parameter table (inference.parameters), stored under their Ollama names.
    NUMERIC = ("temperature", "top_p", "top_k", "min_p", "repeat_penalty", "num_ctx", "num_predict", "seed")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        numeric = {name: _numeric_field(parameters.BY_OLLAMA[name]) for name in self.NUMERIC}
        # Right after the system prompt, before stop sequences and the template.
        ordered = list(self.fields.items())
        at = [name for name, _field in ordered].index("system") + 1
        self.fields = dict(ordered[:at] + list(numeric.items()) + ordered[at:])
        base = self.fields["base"]
        assert isinstance(base, forms.ChoiceField)
        base.choices = [
            (m.full_name, m.full_name) for m in LLMModel.objects.filter(status=ModelStatus.READY).order_by("name", "tag")
        ]

    def parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            name: self.cleaned_data[name] for name in self.NUMERIC if self.cleaned_data.get(name) is not None
        }
        stops = [line.strip() for line in (self.cleaned_data.get("stop") or "").splitlines() if line.strip()]
        if stops:
            params["stop"] = stops
        return params


class EndpointForm(forms.Form):
    url = forms.CharField(
        label=_("vLLM server URL"), max_length=500, widget=forms.TextInput(attrs={"placeholder": "http://vllm:8000", "spellcheck": "false"})
    )
    api_key = forms.CharField(label=_("API key (optional)"), max_length=500, required=False, widget=forms.PasswordInput)
