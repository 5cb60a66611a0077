"""Take the README's screenshots of the users page and of the single sign-on sign-in page.

    .venv/bin/python scripts/screenshots_users.py --url http://127.0.0.1:8000 --password PW \\
        [--sso-url http://127.0.0.1:8001]

Run from the repository root against a server over the same database. It seeds a few people,
groups and a pending sign-up (``manage.py shell``), signs in as the admin and opens
/admin/users/ in Chromium (Debian's, /usr/bin/chromium). ``--sso-url``: a second server
started with OIDC_ENABLED=true and LOCAL_PASSWORDS=false, whose sign-in page is shot.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright
from shots import arguments, launch, sign_in

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"

SEED = """
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
User = get_user_model()
people = [("amara.okafor", "Amara", "Okafor", ["engineering"]), ("bastian.keller", "Bastian", "Keller", ["engineering", "support"]),
          ("chen.wei", "Chen", "Wei", ["research"]), ("dolores.ruiz", "Dolores", "Ruiz", ["support"]),
          ("emil.lindqvist", "Emil", "Lindqvist", []), ("farah.haddad", "Farah", "Haddad", ["research", "engineering"])]
for username, first, last, groups in people:
    user, _ = User.objects.get_or_create(username=username, defaults={"first_name": first, "last_name": last,
                                                                     "email": username + "@example.com"})
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
User.objects.filter(username="emil.lindqvist").update(is_active=False)
"""


def main() -> None:
    parser = arguments()
    parser.add_argument("--sso-url", default="")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "manage.py", "shell", "-c", SEED], cwd=ROOT, check=True, capture_output=True)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        context = browser.new_context(viewport={"width": 1280, "height": 760}, color_scheme="light")
        page = context.new_page()
        sign_in(page, args.url, args.user, args.password)
        page.wait_for_load_state()
        page.goto(args.url + "/admin/users/")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(OUT / "users.png"))
        if args.sso_url:
            sso = browser.new_context(viewport={"width": 1280, "height": 760}, color_scheme="dark").new_page()
            sso.goto(args.sso_url + "/accounts/login/")
            sso.wait_for_selector("#sso-button")
            sso.screenshot(path=str(OUT / "login-sso.png"))
        browser.close()


if __name__ == "__main__":
    main()
