"""A person in headless Chromium: log in, chat, watch tokens stream, press Stop."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser

from chat.models import Conversation, Message, MessageStatus, Role
from tests.factories import add_messages
from models_admin.models import LLMModel
from tests.conftest import PASSWORD, LiveServer

pytestmark = pytest.mark.django_db(transaction=True)


def log_in(page: Any, server: LiveServer, username: str) -> None:
    page.goto(server.url + "/")
    assert "/accounts/login/" in page.url, "an anonymous visitor is sent to the login page"
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-button")
    page.wait_for_selector("#composer-input")


def test_person_chats_sees_tokens_stream_and_stops(
    page: Any, live_platform: LiveServer, alice: AbstractUser, smollm: LLMModel
) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, live_platform, "alice")

    page.fill("#composer-input", "Write a very long story about a lighthouse keeper and the sea.")
    page.keyboard.press("Enter")
    answer = page.locator('.message[data-role="assistant"]').last
    answer.wait_for()
    page.wait_for_selector("#stop-button", state="visible")

    # Sample the answer as it grows: tokens arrive incrementally, not all at once.
    lengths: list[int] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(set(lengths)) < 4:
        lengths.append(len(answer.locator(".message-body").inner_text()))
        page.wait_for_timeout(60)
    growth = sorted(set(lengths))
    assert len(growth) >= 4 and growth[0] < growth[-1], lengths
    assert answer.get_attribute("data-status") == "streaming"

    page.click("#stop-button")
    page.wait_for_selector('.message[data-role="assistant"][data-status="stopped"]', timeout=5000)
    assert page.locator(".badge-stopped").last.is_visible()
    shown = answer.locator(".message-body").inner_text()
    assert shown.strip()

    stored = Message.objects.filter(role=Role.ASSISTANT).get()
    assert stored.status == MessageStatus.STOPPED
    assert stored.content.strip()
    assert "/c/" in page.url, "the new conversation got its own address"
    assert page.locator(".conversation-item").count() == 1
    assert not errors, errors


HOSTILE = """Here is some *markdown*.

<script>window.__pwned = 'script'</script>
<img src=x onerror="window.__pwned='img'">
[click me](javascript:window.__pwned='link')
<a href="javascript:window.__pwned='a'">raw link</a>
<iframe src="javascript:window.__pwned='iframe'"></iframe>

```python
print("hello")
```
"""


def test_hostile_markdown_never_executes(
    page: Any, live_platform: LiveServer, alice: AbstractUser, smollm: LLMModel
) -> None:
    conversation = Conversation.objects.create(owner=alice, model=smollm, title="hostile")
    add_messages(conversation, (Role.USER, "<img src=x onerror=\"window.__pwned='user'\">"), (Role.ASSISTANT, HOSTILE))
    log_in(page, live_platform, "alice")
    page.goto(f"{live_platform.url}/c/{conversation.id}/")
    page.wait_for_selector(".message-body code")
    page.wait_for_timeout(300)

    assert page.evaluate("window.__pwned") is None
    body = page.locator('.message[data-role="assistant"] .message-body')
    assert "Here is some" in body.inner_text()
    for bodies in (body, page.locator('.message[data-role="user"] .message-body')):
        assert bodies.locator("script, iframe, object, embed, img[onerror]").count() == 0
        handlers = bodies.evaluate_all(
            "els => els.flatMap(el => [...el.querySelectorAll('*')]"
            ".flatMap(node => [...node.attributes].map(a => a.name)).filter(n => n.startsWith('on')))"
        )
        assert handlers == []
    hrefs = [a.get_attribute("href") or "" for a in body.locator("a").all()]
    assert not any(h.strip().lower().startswith("javascript:") for h in hrefs), hrefs
    # The code block is highlighted and has a copy button.
    assert body.locator(".copy-code").count() == 1
    assert body.locator("code.hljs, code [class^=hljs-]").count() >= 1
