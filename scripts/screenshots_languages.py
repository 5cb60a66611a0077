"""Take the README's screenshots of the chat and models pages in German and Chinese.

    .venv/bin/python scripts/screenshots_languages.py --url http://127.0.0.1:8000 --password PW

Run from the repository root against a server over the same database. It seeds one finished
conversation per language for the admin (``manage.py shell``; the texts are typed here, since
the bundled 135M model answers in English), then opens the chat and /admin/models/ in
Chromium (Debian's, /usr/bin/chromium) with the browser's language set to German and to
Chinese: the platform follows the browser, no switch is pressed. Chinese needs a CJK font
(`make browser` installs fonts-wqy-microhei).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright
from shots import arguments, launch, sign_in

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"

CONVERSATIONS = {
    "de": (
        "Quartalsbericht zusammenfassen",
        "Fasse die drei wichtigsten Punkte des Quartalsberichts in einfachen Worten zusammen.",
        "Gern, hier die drei wichtigsten Punkte:\n\n1. **Umsatz:** plus 8 % gegenüber dem Vorquartal, "
        "vor allem durch das neue Servicegeschäft.\n2. **Kosten:** die Ausgaben für Rechenzentren sind "
        "gestiegen, bleiben aber im Plan.\n3. **Ausblick:** zwei neue Standorte sollen bis Jahresende "
        "eröffnen.\n\nSoll ich daraus eine kurze E-Mail an das Team machen?",
    ),
    "zh-hans": (
        "季度报告摘要",
        "请用简单的话总结季度报告的三个要点。",
        "好的，三个要点如下：\n\n1. **收入**：比上季度增长 8%，主要来自新的服务业务。\n"
        "2. **成本**：数据中心支出有所增加，但仍在预算之内。\n3. **展望**：年底前计划开设两个新站点。\n\n"
        "需要我把它整理成一封发给团队的简短邮件吗？",
    ),
}

SEED = """
import json
from django.contrib.auth import get_user_model
from chat.models import Conversation, Message, Role
from models_admin.models import LLMModel
data = json.loads(DATA)
owner = get_user_model().objects.get(username=USER)
model = LLMModel.objects.order_by("-is_default", "id").first()
ids = {}
for lang, (title, question, answer) in data.items():
    conversation = Conversation.objects.filter(owner=owner, title=title).first()
    if conversation is None:
        conversation = Conversation.objects.create(owner=owner, title=title, model=model, title_source="user")
        asked = Message.objects.create(conversation=conversation, role=Role.USER, content=question, author=owner)
        answered = Message.objects.create(conversation=conversation, parent=asked, role=Role.ASSISTANT,
                                          content=answer, model_name=model.full_name if model else "")
        Conversation.objects.filter(pk=conversation.pk).update(current_leaf=answered)
    ids[lang] = str(conversation.pk)
print(json.dumps(ids))
"""

BROWSER_LANGUAGE = {"de": "de-DE,de;q=0.9", "zh-hans": "zh-CN,zh;q=0.9"}
SUFFIX = {"de": "de", "zh-hans": "zh"}


def main() -> None:
    parser = arguments()
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    code = f"DATA = {json.dumps(json.dumps(CONVERSATIONS))}\nUSER = {args.user!r}\n" + SEED
    seeded = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, check=True, capture_output=True, text=True)
    ids = json.loads(seeded.stdout.strip().splitlines()[-1])
    with sync_playwright() as playwright:
        browser = launch(playwright)
        for lang, header in BROWSER_LANGUAGE.items():
            context = browser.new_context(
                viewport={"width": 1280, "height": 760},
                color_scheme="light",
                locale=header.split(",")[0],
                extra_http_headers={"Accept-Language": header},
            )
            page = context.new_page()
            sign_in(page, args.url, args.user, args.password)
            page.wait_for_selector("#composer-input")
            page.goto(f"{args.url}/c/{ids[lang]}/")
            page.wait_for_selector(".message-assistant")
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(OUT / f"chat-{SUFFIX[lang]}.png"))
            page.goto(args.url + "/admin/models/")
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(OUT / f"models-{SUFFIX[lang]}.png"))
            context.close()
        browser.close()


if __name__ == "__main__":
    main()
