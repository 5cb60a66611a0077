"""Every main page in German, Spanish, French and Chinese, in headless Chromium: the browser's
language is followed, no English UI word is left, and a person's own choice is stored with
their account and wins over the browser's.

"English word left" is measured against the catalogs themselves: a word counts as English
when it is in some English source string and in no translation of the page's language (so
"Chat", "API" or "Token" may stay where a language uses them too). What people typed (names,
titles, answers) is kept out of the pages: the personas are called ada and zoe, and the
conversation's text is in the page's language.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import polib
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.utils import translation

from accounts.selectors import language_of
from chat.models import Conversation, Role
from models_admin.models import LLMModel
from projects.models import Membership, Project, ProjectRole
from tests.conftest import PASSWORD, ROOT, LiveServer
from tests.factories import add_messages

pytestmark = pytest.mark.django_db(transaction=True)

WORD = re.compile(r"[A-Za-z]{3,}")
LANGUAGES = {"de": "de-DE,de;q=0.9", "es": "es-ES,es;q=0.9", "fr": "fr-FR,fr;q=0.9", "zh_Hans": "zh-CN,zh;q=0.9"}
# What the persona's own conversation says, in each language (typed text is not translated).
TYPED = {
    "de": ("Zusammenfassung bitte", "Gerne, hier ist sie."),
    "es": ("Resumen, por favor", "Claro, aquí está."),
    "fr": ("Résumé, s'il vous plaît", "Bien sûr, le voici."),
    "zh_Hans": ("请总结一下", "好的，在这里。"),
}
PAGES = [
    "/",  # the chat, with its sidebar and the conversation below
    "/settings/keys/",
    "/settings/data/",
    "/settings/usage/",
    "/search/?q=zzz",
    "/p/",
    "/p/new/",
    "/admin/models/",
    "/admin/users/",
    "/admin/users/new/",
    "/admin/groups/",
    "/admin/usage/",
    "/admin/usage/quotas/",
    "/admin/audit/",
]


@cache
def _words(lang: str) -> tuple[frozenset[str], frozenset[str]]:
    """(English words of the sources, words of the language's translations), lowercased."""
    english: set[str] = set()
    translated: set[str] = set()
    for domain in ("django", "djangojs"):
        for entry in polib.pofile(str(Path(ROOT) / "locale" / lang / "LC_MESSAGES" / f"{domain}.po")):
            english.update(w.lower() for w in WORD.findall(re.sub(r"%\(\w+\)[sd]|<[^>]+>", " ", entry.msgid)))
            texts = entry.msgstr_plural.values() if entry.msgid_plural else [entry.msgstr]
            for text in texts:
                translated.update(w.lower() for w in WORD.findall(text))
    return frozenset(english), frozenset(translated)


# Everything a person reads or hears on the page, minus what people typed.
_PAGE_TEXT = """() => {
  const typed = ".message-body, .message-content, .conversation-title, .user-name, .avatar, "
    + "[data-user-content], code, pre, select option:not(:checked)";
  const parts = [document.title];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest("script, style, template, " + typed)) continue;
    if (parent.closest("[hidden]")) continue;
    parts.push(node.textContent);
  }
  for (const el of document.querySelectorAll("[aria-label], [title], [placeholder], [alt]")) {
    if (el.closest("template, " + typed)) continue;
    for (const name of ["aria-label", "title", "placeholder", "alt"]) {
      if (el.hasAttribute(name)) parts.push(el.getAttribute(name));
    }
  }
  return parts.join("\\n");
}"""


def english_left(page: Any, lang: str) -> set[str]:
    english, translated = _words(lang)
    text = page.evaluate(_PAGE_TEXT)
    return {w for w in WORD.findall(text) if w.lower() in english and w.lower() not in translated}


def _log_in(page: Any, server: LiveServer, username: str) -> None:
    page.goto(server.url + "/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-button")
    page.wait_for_selector("#composer-input")


@pytest.fixture
def ada(db: None) -> AbstractUser:
    return get_user_model().objects.create_superuser(username="ada", password=PASSWORD)


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_the_main_pages_have_no_english_left(browser: Any, live_platform: LiveServer, ada: AbstractUser, smollm: LLMModel, lang: str) -> None:
    question, answer = TYPED[lang]
    conversation = Conversation.objects.create(owner=ada, title=question, model=smollm)
    add_messages(conversation, (Role.USER, question), (Role.ASSISTANT, answer))
    # Rows, not project_create: its sidebar broadcast cannot run beside Playwright's loop.
    project = Project.objects.create(name=question, created_by=ada)
    Membership.objects.create(project=project, user=ada, role=ProjectRole.OWNER)
    context = browser.new_context(locale=LANGUAGES[lang].split(",")[0], extra_http_headers={"Accept-Language": LANGUAGES[lang]})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(live_platform.url + "/accounts/login/")
        assert page.evaluate("document.documentElement.lang") == lang.lower().replace("_", "-")
        assert english_left(page, lang) == set(), "/accounts/login/"
        _log_in(page, live_platform, "ada")
        left: dict[str, set[str]] = {}
        for path in [*PAGES, f"/c/{conversation.id}/", f"/p/{project.id}/", f"/p/{project.id}/settings/"]:
            response = page.goto(live_platform.url + path)
            assert response is not None and response.status == 200, path
            page.wait_for_load_state("networkidle")
            words = english_left(page, lang)
            if words:
                left[path] = words
        assert left == {}, f"English left in {lang}: {left}"
        assert errors == []
    finally:
        context.close()


def test_the_language_chosen_in_the_user_menu_is_kept_with_the_account(
    browser: Any, live_platform: LiveServer, ada: AbstractUser, smollm: LLMModel
) -> None:
    context = browser.new_context(locale="en-US", extra_http_headers={"Accept-Language": "en-US,en;q=0.9"})
    page = context.new_page()
    try:
        _log_in(page, live_platform, "ada")
        assert page.evaluate("document.documentElement.lang") == "en"
        page.select_option("#language-select-sidebar", "de")  # applies at once, no button
        page.wait_for_function("document.documentElement.lang === 'de'")
        page.wait_for_selector("#composer-input")
        with translation.override("de"):
            new_chat = translation.gettext("New chat")
        assert new_chat != "New chat" and page.locator("#new-chat").inner_text().strip() == new_chat
        assert language_of(ada) == "de"
    finally:
        context.close()
    # A new browser that asks for English: once ada signs in, her choice wins.
    context = browser.new_context(locale="en-US", extra_http_headers={"Accept-Language": "en-US,en;q=0.9"})
    page = context.new_page()
    try:
        page.goto(live_platform.url + "/accounts/login/")
        assert page.evaluate("document.documentElement.lang") == "en"
        _log_in(page, live_platform, "ada")
        assert page.evaluate("document.documentElement.lang") == "de"
        page.goto(live_platform.url + "/settings/keys/")
        assert page.evaluate("document.documentElement.lang") == "de"
    finally:
        context.close()
