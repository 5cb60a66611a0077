"""Take the README's screenshots of projects, sharing and branches from a running platform.

    .venv/bin/python scripts/screenshots_projects.py --url http://127.0.0.1:8000 --password PW

Run from the repository root against a server over the same database (it seeds a project
with two colleagues through ``manage.py shell``, then drives the real UI in Chromium: a new
conversation in the project, a real answer, a regenerated one, the share dialog).
Needs Debian's Chromium (/usr/bin/chromium).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from playwright.sync_api import Page, sync_playwright
from shots import arguments, launch, sign_in

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"

SEED = """
from django.contrib.auth import get_user_model
from projects.models import Membership, Project
User = get_user_model()
admin = User.objects.get(username={user!r})
people = {{}}
for name, first, last in (("bob", "Bob", "Meyer"), ("charlie", "Charlie", "Dubois")):
    person, _ = User.objects.get_or_create(username=name, defaults={{"first_name": first, "last_name": last}})
    person.set_password({password!r}); person.save()
    people[name] = person
project, _ = Project.objects.get_or_create(
    name="Product launch",
    defaults={{"created_by": admin, "description": "Everything for the spring launch: copy, FAQ and press notes.",
               "instructions": "You help the launch team. Answer briefly and in plain language."}},
)
for person, role in ((admin, "owner"), (people["bob"], "editor"), (people["charlie"], "viewer")):
    Membership.objects.get_or_create(project=project, user=person, defaults={{"role": role}})
print(project.id)
"""


def log_in(page: Page, url: str, user: str, password: str) -> None:
    sign_in(page, url, user, password)
    page.wait_for_selector("#composer-input")


def wait_done(page: Page) -> None:
    page.wait_for_selector('.message[data-role="assistant"][data-status="streaming"]', state="detached", timeout=120_000)


def main() -> None:
    parser = arguments()
    args = parser.parse_args()
    seeded = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SEED.format(user=args.user, password=args.password)],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )
    project_id = seeded.stdout.strip().splitlines()[-1]
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="light")
        page = context.new_page()
        log_in(page, args.url, args.user, args.password)

        # A conversation in the project, with a real answer and a regenerated one.
        page.goto(f"{args.url}/p/{project_id}/")
        page.click("#new-conversation")
        page.wait_for_selector("#composer-input")
        page.fill("#composer-input", "Write a two-sentence announcement for our new product.")
        page.keyboard.press("Enter")
        page.wait_for_selector('.message[data-role="assistant"]')
        wait_done(page)
        page.locator('.message[data-role="assistant"]').last.hover()
        page.locator('.message[data-role="assistant"] .message-regenerate').last.click()
        page.wait_for_selector('.message[data-role="assistant"] .branch-nav:not([hidden])')
        wait_done(page)
        page.locator('.message[data-role="assistant"]').last.hover()
        page.screenshot(path=str(OUT / "branches.png"))

        # The share dialog, with a colleague added.
        page.click("#share-button")
        page.wait_for_selector("#share-dialog[open]")
        page.fill("#share-username", "bob")
        page.select_option("#share-permission", "write")
        page.click("#share-add-button")
        page.wait_for_selector("#share-dialog >> text=bob")
        page.wait_for_timeout(300)
        page.screenshot(path=str(OUT / "share-dialog.png"))
        page.keyboard.press("Escape")

        # The project page, in dark.
        dark = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="dark")
        page = dark.new_page()
        log_in(page, args.url, args.user, args.password)
        page.goto(f"{args.url}/p/{project_id}/")
        page.wait_for_selector("#conversation-table")
        page.screenshot(path=str(OUT / "project.png"))
        browser.close()


if __name__ == "__main__":
    main()
