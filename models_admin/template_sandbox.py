"""Render a chat template on a sample chat; run as its own short-lived process.

    python -I models_admin/template_sandbox.py < template   →   prints "" or what is wrong

Standalone on purpose (no Django, no package imports): ``models_admin.services.templates``
runs it in a child process with a time limit, so a template that loops for ever costs a
killed child, not a web worker.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

from jinja2 import TemplateError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

# Rendering a sample chat never needs more; a template that writes more is refused.
MAX_RENDERED_CHARS = 256 * 1024

SAMPLE = [
    {"role": "system", "content": "SAMPLE-SYSTEM-TEXT"},
    {"role": "user", "content": "SAMPLE-USER-TEXT"},
    {"role": "assistant", "content": "SAMPLE-ASSISTANT-TEXT"},
    {"role": "user", "content": "SAMPLE-SECOND-QUESTION"},
]


class TemplateRaised(Exception):
    pass


def _raise_exception(message: str) -> NoReturn:
    # Templates call raise_exception('...') for chats they refuse (the HF convention).
    raise TemplateRaised(str(message)[:300])


def problem(template: str) -> str:
    """What is wrong with ``template`` on an ordinary chat, or "" when it works."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: "2026-01-01"
    try:
        compiled = env.from_string(template)
    except TemplateSyntaxError as exc:
        return f"The chat template has an error on line {exc.lineno}: {exc.message}"
    context: dict[str, Any] = {
        "messages": SAMPLE, "add_generation_prompt": True, "bos_token": "<s>", "eos_token": "</s>", "tools": None,
    }
    size, parts = 0, []
    try:
        for part in compiled.generate(**context):
            size += len(part)
            if size > MAX_RENDERED_CHARS:
                return "The chat template writes far more than the chat it is given."
            parts.append(part)
    except TemplateRaised as exc:
        return f"The chat template refuses an ordinary chat (system, user, assistant, user): {exc}"
    except (TemplateError, TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        return f"The chat template fails on an ordinary chat: {type(exc).__name__}: {str(exc)[:300]}"
    rendered = "".join(parts)
    if any(m["content"] not in rendered for m in SAMPLE[1:]):
        return ("The chat template leaves out the messages' text (it never writes message['content']), "
                "so the model would see none of the chat.")
    return ""


if __name__ == "__main__":
    sys.stdout.write(problem(sys.stdin.read()))
