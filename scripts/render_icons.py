"""Render the app icons the web app manifest and iOS use from static/img/favicon.svg.

    python scripts/render_icons.py

Run again after changing the SVG; commit the PNGs it writes to static/img/. Needs Debian's
Chromium (/usr/bin/chromium), as the browser tests do.
"""

from __future__ import annotations

import base64
from pathlib import Path

from playwright.sync_api import sync_playwright

IMG = Path(__file__).resolve().parent.parent / "static" / "img"
ROUNDED = ' rx="8"'

# name: (size, full bleed). Full bleed: the green square without its rounded corners, for
# masks the platform cuts itself (Android's maskable icons, iOS's home screen); the glyph
# already sits inside the maskable safe zone (the central circle of 80 % of the width).
ICONS = {
    "icon-192.png": (192, False),
    "icon-512.png": (512, False),
    "icon-maskable-512.png": (512, True),
    "apple-touch-icon.png": (180, True),
}


def main() -> None:
    svg = (IMG / "favicon.svg").read_text(encoding="utf-8")
    if svg.count(ROUNDED) != 1:
        raise SystemExit(f"favicon.svg: expected one {ROUNDED.strip()!r} on its background square")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        for name, (size, full_bleed) in ICONS.items():
            source = svg.replace(ROUNDED, "") if full_bleed else svg
            data = base64.b64encode(source.encode()).decode()
            page = browser.new_page(viewport={"width": size, "height": size}, device_scale_factor=1)
            page.set_content(
                f'<body style="margin:0"><img src="data:image/svg+xml;base64,{data}" width="{size}" height="{size}" style="display:block"></body>'
            )
            page.wait_for_function("document.images[0].complete")
            page.screenshot(path=str(IMG / name), omit_background=True)
            page.close()
            print(IMG / name)
        browser.close()


if __name__ == "__main__":
    main()
