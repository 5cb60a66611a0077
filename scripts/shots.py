"""What every README screenshot script does the same way: start Debian's Chromium, sign in."""

from __future__ import annotations

import argparse
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


def arguments() -> argparse.ArgumentParser:
    """The options every script takes: the server, and the admin to sign in as."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", required=True)
    return parser
