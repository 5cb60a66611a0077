"""Take the README's screenshot of the audit log from a running platform.

    DATA_DIR=... .venv/bin/python scripts/screenshots_audit.py --url http://127.0.0.1:8000 --password PW

Run from the repository root against a server over the same database: it records a few real
actions (sign-ins through the login form, a failed one, an API key) and seeds the rest through
``audit_record``, then opens /admin/audit/ in Chromium (Debian's, /usr/bin/chromium).
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
from audit.services import audit_record
User = get_user_model()
admin = User.objects.get(username={user!r})
bob, _ = User.objects.get_or_create(username="bob")
for action, target, detail, address in (
    ("share.created", "conversation 3f2a…", {{"with": "charlie", "permission": "read"}}, "10.20.0.14"),
    ("data.exported", "bob", {{"what": "all", "conversations": 12}}, "10.20.0.14"),
):
    audit_record(actor=bob, action=action, target=target, detail=detail, address=address)
audit_record(actor=None, action="retention.purged", target="conversations",
             detail={{"deleted": 41, "global_days": 180, "projects": {{}}}})
audit_record(actor=admin, action="model.context", target="smollm2:135m", detail={{"num_ctx": 4096}}, address="10.20.0.2")
"""


def main() -> None:
    parser = arguments()
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        context = browser.new_context(viewport={"width": 1280, "height": 760}, color_scheme="light")
        page = context.new_page()
        page.goto(args.url + "/accounts/login/")  # a failed sign-in, then the real one
        page.fill("input[name=username]", "eve")
        page.fill("input[name=password]", "guess")
        page.click("#login-button")
        subprocess.run([sys.executable, "manage.py", "shell", "-c", SEED.format(user=args.user)], cwd=ROOT, check=True,
                       capture_output=True)
        sign_in(page, args.url, args.user, args.password)
        page.wait_for_load_state()
        page.goto(args.url + "/admin/audit/")
        page.wait_for_selector("#audit-table")
        page.screenshot(path=str(OUT / "audit.png"))
        browser.close()


if __name__ == "__main__":
    main()
