from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        help_text=_("Where you will use it, e.g. “Chatbox on my laptop”."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": _("Chatbox on my laptop")}),
    )

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise forms.ValidationError(_("Give the key a name."))
        return name
