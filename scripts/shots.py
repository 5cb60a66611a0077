"""What every README screenshot script does the same way: start Debian's Chromium, sign in."""

from __future__ import annotations

from typing import Any

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def launch(playwright: Any) -> Any:
    """Headless Chromium from Debian's package (Playwright's own download cannot work offline)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)


def sign_in(page: Any, url: str, user: str, password: str) -> None:
    """Fill the password form at ``url``'s sign-in page and wait until the next page loads."""
    page.goto(url + "/accounts/login/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("#login-button")
    page.wait_for_load_state()
