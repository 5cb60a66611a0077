"""The command-line tools admins use for automation."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

from accounts.selectors import api_key_for_secret

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_user_prints_a_generated_password_that_works() -> None:
    output = _run("create_user", "dana")
    password = output.split("Password: ")[1].strip()
    user = authenticate(username="dana", password=password)
    assert user is not None and not user.is_staff


def test_create_user_as_admin_with_a_given_password() -> None:
    output = _run("create_user", "erin", "--admin", "--password", "a-long-enough-passphrase")
    assert "Password" not in output
    user = authenticate(username="erin", password="a-long-enough-passphrase")
    assert user is not None and user.is_staff and user.is_superuser


def test_create_user_refuses_duplicates_and_weak_passwords() -> None:
    _run("create_user", "frank")
    with pytest.raises(CommandError, match="already exists"):
        _run("create_user", "frank")
    with pytest.raises(CommandError):
        _run("create_user", "gina", "--password", "123")
    assert not get_user_model().objects.filter(username="gina").exists()


def test_create_api_key_prints_only_the_key() -> None:
    _run("create_user", "hal")
    secret = _run("create_api_key", "hal", "--name", "ci").strip()
    key = api_key_for_secret(secret=secret)
    assert key is not None and key.user.username == "hal" and key.name == "ci"


def test_create_api_key_for_an_unknown_user_fails() -> None:
    with pytest.raises(CommandError, match="no active user"):
        _run("create_api_key", "nobody")
