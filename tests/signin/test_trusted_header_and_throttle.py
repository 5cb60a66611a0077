"""Sign-in by an authenticating proxy's header (honoured only from TRUSTED_PROXIES), and
throttled password sign-ins (django-axes): per account and address, and per address.

Django's test client stands in for the browser here; the peer address is the client's
REMOTE_ADDR, which is exactly what the platform trusts or not.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.test import Client

from audit.models import AuditEntry
from tests.conftest import PASSWORD

PROXY = "10.0.0.5"
STRANGER = "203.0.113.9"
# A browser's Accept: "/" answers Ollama clients with "Ollama is running".
HEADERS = {"HTTP_ACCEPT": "text/html,application/xhtml+xml", "HTTP_X_FORWARDED_USER": "carol", "HTTP_X_FORWARDED_EMAIL": "carol@example.com",
           "HTTP_X_FORWARDED_GROUPS": "engineering, staff-admins"}


@pytest.fixture
def behind_proxy(settings: Any) -> None:
    """The platform as an operator configures it behind oauth2-proxy or Authelia."""
    settings.TRUSTED_PROXIES = ["10.0.0.0/24"]
    settings.TRUSTED_HEADER_USER = "X-Forwarded-User"
    settings.TRUSTED_HEADER_EMAIL = "X-Forwarded-Email"
    settings.TRUSTED_HEADER_GROUPS = "X-Forwarded-Groups"
    settings.TRUSTED_HEADER_ADMIN_GROUP = "staff-admins"
    settings.TRUSTED_HEADER_CREATE_USERS = True
    middleware = list(settings.MIDDLEWARE)
    middleware.insert(middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
                      "accounts.signin.trusted_header.TrustedHeaderMiddleware")
    settings.MIDDLEWARE = middleware
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS,
                                        "accounts.signin.trusted_header.TrustedHeaderBackend"]


@pytest.mark.django_db
def test_the_proxy_header_signs_carol_in_with_her_groups_and_admin_flag(behind_proxy: None, client: Client) -> None:
    response = client.get("/", REMOTE_ADDR=PROXY, **HEADERS)

    assert response.status_code == 200
    assert b'id="composer-input"' in response.content
    carol = get_user_model().objects.get(username="carol")
    assert carol.is_staff and carol.email == "carol@example.com"
    assert sorted(carol.groups.values_list("name", flat=True)) == ["engineering", "staff-admins"]
    entry = AuditEntry.objects.get(action="signin.succeeded")
    assert (entry.target, entry.detail) == ("carol", {"backend": "TrustedHeaderBackend"})


@pytest.mark.django_db
def test_the_same_header_from_any_other_address_is_ignored_and_recorded_once(behind_proxy: None, client: Client) -> None:
    first = client.get("/", REMOTE_ADDR=STRANGER, **HEADERS)
    second = client.get("/", REMOTE_ADDR=STRANGER, **HEADERS)

    assert first.status_code == second.status_code == 302
    assert first["Location"].startswith("/accounts/login/")
    assert not get_user_model().objects.filter(username="carol").exists()
    forged = AuditEntry.objects.get(action="signin.header_untrusted")
    assert forged.target == "carol"
    assert forged.detail["peer"] == STRANGER
    assert not AuditEntry.objects.filter(action="signin.succeeded").exists()


@pytest.mark.django_db
def test_a_header_naming_a_deactivated_account_signs_nobody_in(behind_proxy: None, client: Client) -> None:
    get_user_model().objects.create_user(username="carol", is_active=False)

    response = client.get("/", REMOTE_ADDR=PROXY, **HEADERS)

    assert response.status_code == 302
    carol = get_user_model().objects.get(username="carol")
    assert not carol.is_active and not carol.is_staff
    assert not carol.groups.exists()


@pytest.mark.django_db
def test_with_local_passwords_off_a_posted_password_is_refused_and_counts_for_nothing(
    alice: AbstractUser, client: Client, settings: Any
) -> None:
    settings.LOCAL_PASSWORDS = False
    settings.AUTHENTICATION_BACKENDS = [b for b in settings.AUTHENTICATION_BACKENDS if not b.endswith("ModelBackend")]
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 403
    assert "Signing in with a password is switched off on this server." in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert not AuditEntry.objects.filter(action__startswith="signin.").exists()


def _try_password(client: Client, username: str, password: str, address: str) -> Any:
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.mark.django_db
def test_five_wrong_passwords_lock_that_account_from_that_address_only(alice: AbstractUser, settings: Any) -> None:
    settings.SIGNIN_FAILURES_PER_ACCOUNT = settings.AXES_FAILURE_LIMIT = 5
    attacker = Client()
    statuses = [_try_password(attacker, "alice", f"guess-{n}", STRANGER).status_code for n in range(5)]
    assert statuses == [200, 200, 200, 200, 429]

    # Locked out: even the right password from that address gets the lockout page.
    locked = _try_password(attacker, "alice", PASSWORD, STRANGER)
    assert locked.status_code == 429
    assert locked["Retry-After"] == str(settings.SIGNIN_LOCKOUT_MINUTES * 60)
    assert "Too many failed sign-ins" in locked.content.decode()

    # alice at her own desk is not locked out by someone else's guessing.
    at_desk = _try_password(Client(), "alice", PASSWORD, "10.1.2.3")
    assert at_desk.status_code == 302
    assert AuditEntry.objects.filter(action="signin.failed", target="alice", address=STRANGER).count() >= 5
    assert AuditEntry.objects.filter(action="signin.locked_out", target="alice").exists()


@pytest.mark.django_db
def test_guessing_across_many_accounts_from_one_address_is_locked_out_too(settings: Any) -> None:
    settings.SIGNIN_FAILURES_PER_ADDRESS = 6
    attacker = Client()
    statuses = [_try_password(attacker, f"user{n}", "guess", STRANGER).status_code for n in range(6)]
    assert statuses == [200] * 5 + [429]
    assert _try_password(attacker, "someone-else", "guess", STRANGER).status_code == 429
