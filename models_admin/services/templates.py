"""Checking a custom model's chat template when it is saved, not when someone chats.

llama.cpp renders GGUF chat templates only when it loads the model, where a broken one ends as
"Failed to init server" in the middle of a person's chat. Here the template is compiled and
rendered on a short sample chat in Jinja's sandbox (``models_admin/template_sandbox.py``), in a
child process with a time limit: a template that loops for ever cannot hold a web worker.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .errors import ModelError

# The longest template accepted (the largest GGUF templates in use are about 12 KB).
MAX_TEMPLATE_CHARS = 64 * 1024
CHECK_SECONDS = 5
_SANDBOX = Path(__file__).resolve().parent.parent / "template_sandbox.py"


def chat_template_check(template: str) -> None:
    """Raise ModelError saying what is wrong with ``template``; return when it works."""
    if len(template) > MAX_TEMPLATE_CHARS:
        raise ModelError(f"The chat template is too long: at most {MAX_TEMPLATE_CHARS} characters.")
    try:
        checked = subprocess.run(
            [sys.executable, "-I", str(_SANDBOX)], input=template, capture_output=True, text=True,
            timeout=CHECK_SECONDS, check=False,
        )
    except subprocess.TimeoutExpired:
        raise ModelError(f"The chat template did not finish rendering a four-message chat in {CHECK_SECONDS} seconds.") from None
    if checked.returncode != 0:
        raise ModelError("The chat template could not be checked: " + (checked.stderr.strip().splitlines() or ["?"])[-1][:300])
    if checked.stdout:
        raise ModelError(checked.stdout)
