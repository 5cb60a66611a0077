"""Take the README's screenshots of the real UI from a running platform.

    python scripts/screenshots.py --url http://127.0.0.1:8000 --user admin --password PW

Needs Debian's Chromium (/usr/bin/chromium) and a server with a model loaded.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, sync_playwright
from shots import arguments, launch, sign_in

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
PROMPT = "Show me a Python function that reverses a string, with a short explanation."


def log_in(page: Page, url: str, user: str, password: str) -> None:
    sign_in(page, url, user, password)
    page.wait_for_selector("#composer-input")


def main() -> None:
    parser = arguments()
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        for scheme in ("light", "dark"):
            context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
            page = context.new_page()
            log_in(page, args.url, args.user, args.password)
            page.fill("#composer-input", PROMPT)
            page.keyboard.press("Enter")
            page.wait_for_selector('.message[data-role="assistant"][data-status="streaming"] .message-body p')
            page.wait_for_timeout(700)
            page.screenshot(path=str(OUT / f"chat-streaming-{scheme}.png"))
            page.wait_for_selector('.message[data-role="assistant"]:not([data-status="streaming"])', timeout=60000)
            page.screenshot(path=str(OUT / f"chat-done-{scheme}.png"))
            context.close()
        phone = browser.new_context(viewport={"width": 390, "height": 780}, device_scale_factor=2, is_mobile=True)
        page = phone.new_page()
        log_in(page, args.url, args.user, args.password)
        page.goto(args.url + (page.locator(".conversation-item a").first.get_attribute("href") or "/"))
        page.wait_for_selector(".message-body")
        page.screenshot(path=str(OUT / "chat-phone.png"))
        browser.close()


if __name__ == "__main__":
    main()
