"""Single sign-on through a real OpenID provider, in headless Chromium, through the real
redirects: the platform's sign-in page → the provider's login and consent pages → the
platform's callback (code exchange, ID token check, userinfo) → the chat page.

The provider (tests/signin/oidc_provider/server.mjs) knows ``ada`` (groups staff-admins and
engineering) and ``grace`` (engineering); any password is accepted there, the login names
the account. The platform runs with LOCAL_PASSWORDS=false and OIDC_ADMIN_GROUP=staff-admins.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from audit.models import AuditEntry
from tests.signin.conftest import SSOPlatform

pytestmark = pytest.mark.django_db(transaction=True)


def sign_in_at_provider(page: Any, sso: SSOPlatform, login: str) -> Any:
    """From the platform's sign-in page through the provider's pages; the response the
    browser ends on."""
    page.goto(f"{sso.url}/accounts/login/")
    page.click("#sso-button")
    # The provider's own pages, on its own origin.
    page.wait_for_url(f"{sso.issuer}/interaction/**")
    page.fill('input[name="login"]', login)
    page.fill('input[name="password"]', "anything: the test provider checks no password")
    page.click('button[type="submit"]')
    page.wait_for_url(f"{sso.issuer}/interaction/**")  # consent
    with page.expect_navigation(url=f"{sso.url}/**") as navigation:
        page.click('button[type="submit"]')
    return navigation.value


def test_the_sign_in_page_offers_only_single_sign_on_when_passwords_are_off(sso_platform: SSOPlatform, page: Any) -> None:
    page.goto(f"{sso_platform.url}/accounts/login/")
    assert page.locator("#sso-button").inner_text() == "Sign in with Company SSO"
    assert page.locator("#password-form").count() == 0
    assert page.locator("#password-divider").count() == 0
    # (A password posted anyway: tests/signin/test_trusted_header_and_throttle.py.)


def test_ada_signs_in_through_the_provider_and_becomes_an_admin_with_her_groups(
    sso_platform: SSOPlatform, page: Any
) -> None:
    landed = sign_in_at_provider(page, sso_platform, "ada")
    page.wait_for_url(f"{sso_platform.url}/")
    assert landed.status == 200
    page.wait_for_selector("#composer-input")

    ada = get_user_model().objects.get(username="ada")
    assert ada.is_active and ada.is_staff and not ada.is_superuser
    assert ada.email == "ada@example.com"
    assert not ada.has_usable_password()  # created by the sign-in: no password to guess
    assert sorted(ada.groups.values_list("name", flat=True)) == ["engineering", "staff-admins"]
    signed_in = AuditEntry.objects.get(action="signin.succeeded", target="ada")
    assert signed_in.detail == {"backend": "OIDCBackend"}
    assert signed_in.address == "127.0.0.1"

    # The session is a real one: an admin page opens.
    assert page.goto(f"{sso_platform.url}/admin/users/").status == 200


def test_grace_is_not_an_admin_and_her_groups_follow_the_provider(sso_platform: SSOPlatform, page: Any) -> None:
    User = get_user_model()
    grace = User.objects.create_user(username="grace", email="old@example.com", is_staff=True)
    grace.groups.add(Group.objects.create(name="marketing"))

    sign_in_at_provider(page, sso_platform, "grace")
    page.wait_for_url(f"{sso_platform.url}/")

    grace.refresh_from_db()
    assert not grace.is_staff, "the provider does not put grace in staff-admins"
    assert grace.email == "grace@example.com"
    assert list(grace.groups.values_list("name", flat=True)) == ["engineering"]
    assert AuditEntry.objects.filter(action="user.admin_revoked", target="grace").count() == 1
    assert page.goto(f"{sso_platform.url}/admin/users/").status == 404


def test_a_deactivated_account_is_refused_with_a_page_that_says_why(sso_platform: SSOPlatform, page: Any) -> None:
    get_user_model().objects.create_user(username="mallory", is_active=False)

    refused = sign_in_at_provider(page, sso_platform, "mallory")

    assert refused.status == 403
    assert page.url.startswith(f"{sso_platform.url}/accounts/sso/callback/")
    assert page.locator("#sso-failed").get_attribute("data-reason") == "inactive"
    assert "Your account on this server is deactivated." in page.locator("#sso-failed").inner_text()
    entry = AuditEntry.objects.get(action="signin.sso_refused")
    assert (entry.target, entry.detail) == ("mallory", {"reason": "inactive"})
    # Still not signed in: the chat page sends the browser to the sign-in page.
    page.goto(f"{sso_platform.url}/")
    assert page.url.startswith(f"{sso_platform.url}/accounts/login/")


def test_a_callback_without_a_started_sign_in_is_refused(sso_platform: SSOPlatform) -> None:
    # A forged or replayed callback: no state in this browser's session.
    response = httpx.get(f"{sso_platform.url}/accounts/sso/callback/?code=stolen&state=guessed")
    assert response.status_code == 403
    assert "The sign-in took too long or was started in another window." in response.text
    assert AuditEntry.objects.get(action="signin.sso_refused").detail == {"reason": "expired"}
