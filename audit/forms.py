"""The audit page's filters. Parsing only."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .selectors import AuditFilter


class AuditFilterForm(forms.Form):
    action = forms.CharField(label=_("Action"), max_length=100, required=False,
                             widget=forms.TextInput(attrs={"placeholder": "signin", "spellcheck": "false"}))
    actor = forms.CharField(label=_("Who"), max_length=150, required=False,
                            widget=forms.TextInput(attrs={"spellcheck": "false"}))
    since = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    q = forms.CharField(label=_("Target contains"), max_length=200, required=False)
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def filters(self) -> AuditFilter:
        """The valid filters (an invalid one is left out and shown with its error)."""
        data = self.cleaned_data if hasattr(self, "cleaned_data") else {}
        return AuditFilter(
            action=(data.get("action") or "").strip(),
            actor=(data.get("actor") or "").strip(),
            since=data.get("since"),
            until=data.get("until"),
            text=(data.get("q") or "").strip(),
        )
