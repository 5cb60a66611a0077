"""The admin's models table in headless Chromium: on a 1366 px laptop the Actions menu is in
view without scrolling, and on a phone each model is a card, with no sideways scrolling."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser

from models_admin.models import LLMModel
from tests.browser.test_chat_in_browser import log_in
from tests.conftest import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("width,height", [(1366, 768), (390, 844)])
def test_the_actions_menu_is_in_view_and_the_page_never_scrolls_sideways(
    browser: Any, live_platform: LiveServer, admin_user: AbstractUser, smollm: LLMModel, width: int, height: int
) -> None:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    try:
        log_in(page, live_platform, "admin")
        page.goto(live_platform.url + "/admin/models/")
        actions = page.locator(f'tr[data-model="{smollm.full_name}"] .ma-actions summary')
        if height > width:  # the phone: down to the card (the table is at the top on a laptop)
            page.evaluate("el => el.scrollIntoView({block: 'center'})", actions.element_handle())
        # No sideways scrolling of the table either: what is seen without touching it.
        assert page.evaluate("document.querySelector('.ma-table-wrap').scrollLeft") == 0
        box = actions.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        # Family and format are not lost where their columns are folded away.
        assert "llama · gguf" in page.locator(f'tr[data-model="{smollm.full_name}"] th').inner_text()
        actions.click()
        assert page.locator(f'tr[data-model="{smollm.full_name}"] .ma-menu-panel').is_visible()
    finally:
        context.close()
