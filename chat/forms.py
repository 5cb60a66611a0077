"""Forms of the chat app's pages. Parsing and confirmation only: the services decide."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.models import User
from django.utils.translation import gettext_lazy as _


class AccountDeleteForm(forms.Form):
    """Deleting one's own account: the password again, or the username without one (SSO)."""

    password = forms.CharField(
        label=_("Your password"), required=False, strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    confirm = forms.CharField(
        label=_("Type your username to confirm"), required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        # Accounts that sign in only through single sign-on have no password to type.
        self.uses_password = user.has_usable_password()
        del self.fields["confirm" if self.uses_password else "password"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.uses_password:
            if not self.user.check_password(data.get("password") or ""):
                self.add_error("password", _("This is not your password."))
        elif (data.get("confirm") or "").strip() != self.user.get_username():
            self.add_error("confirm", _("Type your username exactly as it is shown."))
        return data


class AdminAccountDeleteForm(forms.Form):
    """An admin deleting someone's account types that username, so no click does it by mistake."""

    confirm = forms.CharField(
        label=_("Type the username to confirm"),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.username = user.get_username()

    def clean_confirm(self) -> str:
        value = str(self.cleaned_data.get("confirm", "")).strip()
        if value != self.username:
            raise forms.ValidationError(_("Type the username exactly as it is shown."))
        return value
