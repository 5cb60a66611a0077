"""Take the README's screenshot of the usage dashboard from a running platform.

    .venv/bin/python scripts/screenshots_usage.py --url http://127.0.0.1:8000 --password PW

Run from the repository root against a server over the same database: it seeds five
colleagues in three groups with 30 days of usage records through ``manage.py shell``, rolls
them up as the beat task does, then opens /admin/usage/ in Chromium (Debian's, /usr/bin/chromium).
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
import random
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from accounts.models import Quota, UsageRecord
from projects.models import Membership, Project
from usage.services import usage_rollup_range
User = get_user_model()
admin = User.objects.get(username={user!r})
random.seed(9)
groups = {{name: Group.objects.get_or_create(name=name)[0] for name in ("Research", "Sales", "Support")}}
Quota.objects.get_or_create(group=groups["Support"], defaults={{"tokens_per_day": 50_000, "requests_per_minute": 20}})
people = []
for name, group, weight in (("amira", "Research", 5), ("bruno", "Research", 3), ("chen", "Sales", 2),
                            ("dana", "Support", 4), ("elias", "Sales", 1)):
    person, _ = User.objects.get_or_create(username=name)
    person.groups.add(groups[group])
    people.append((person, weight))
project, _ = Project.objects.get_or_create(name="Product launch", defaults={{"created_by": admin}})
models = ["smollm2:135m", "llama3.1:8b", "qwen2.5:7b"]
sources = ["web", "web", "ollama", "openai"]
UsageRecord.objects.filter(user__in=[p for p, _ in people]).delete()
now = timezone.now()
batch = []
for day in range(30):
    for person, weight in people:
        for _ in range(random.randint(weight, weight * 6)):
            batch.append((day, UsageRecord(user=person, model_name=random.choice(models), source=random.choice(sources),
                                           project_id=project.id if random.random() < 0.3 else None,
                                           prompt_tokens=random.randint(50, 900), completion_tokens=random.randint(20, 600))))
UsageRecord.objects.bulk_create([r for _, r in batch])
for day in range(30):
    ids = [r.pk for d, r in batch if d == day]
    UsageRecord.objects.filter(pk__in=ids).update(created_at=now - timedelta(days=day, minutes=5))
today = timezone.localdate()
usage_rollup_range(start=today - timedelta(days=30), end=today - timedelta(days=1))
print(len(batch))
"""


def main() -> None:
    parser = arguments()
    args = parser.parse_args()
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SEED.format(user=args.user)],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_context(viewport={"width": 1366, "height": 1100}, color_scheme="light").new_page()
        sign_in(page, args.url, args.user, args.password)
        page.wait_for_url(args.url + "/")
        page.goto(args.url + "/admin/usage/?by=user")
        page.wait_for_selector(".usage-chart .uplot")
        page.wait_for_timeout(300)
        page.screenshot(path=str(OUT / "usage.png"))
        browser.close()


if __name__ == "__main__":
    main()
