from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from .selectors import DIMENSIONS, MAX_DAYS, DateRange, Dimension, default_range

_DIMENSION_LABELS = {
    "user": _("User"),
    "group": _("Group"),
    "model": _("Model"),
    "project": _("Project"),
    "source": _("Interface"),
}


class QuotaForm(forms.Form):
    """The four limits; blank means not set (a user's blank falls back to their groups')."""

    tokens_per_day = forms.IntegerField(label=_("Tokens per day"), required=False, min_value=0, max_value=10**15)
    tokens_per_month = forms.IntegerField(label=_("Tokens per month"), required=False, min_value=0, max_value=10**15)
    requests_per_minute = forms.IntegerField(label=_("Requests per minute"), required=False, min_value=1, max_value=10**6)
    concurrent_answers = forms.IntegerField(label=_("Concurrent answers"), required=False, min_value=1, max_value=1000)


class RangeForm(forms.Form):
    start = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    by = forms.ChoiceField(label=_("Per"), required=False, choices=[(d, _DIMENSION_LABELS[d]) for d in DIMENSIONS])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        default = default_range()
        start, end = data.get("start") or None, data.get("end") or None
        if end is None:
            end = min(default.end, start + timedelta(days=29)) if start else default.end
        if start is None:
            start = end - timedelta(days=29)
        if start > end:
            raise forms.ValidationError(_("The start date is after the end date."))
        if (end - start).days + 1 > MAX_DAYS:
            raise forms.ValidationError(_("Choose at most %(days)d days.") % {"days": MAX_DAYS})
        data["range"] = DateRange(start, end)
        return data

    def result(self) -> tuple[DateRange, Dimension]:
        """The range and dimension asked for, or the defaults when the form is invalid."""
        if self.is_valid():
            return self.cleaned_data["range"], self.cleaned_data.get("by") or "user"
        return default_range(), "user"
