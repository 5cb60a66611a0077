"""The translation check (`make check`) finds what it promises to find."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from tests.conftest import ROOT


def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_i18n", ROOT / "scripts" / "check_i18n.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check = _checker()


def test_unmarked_template_text_and_attributes_are_found() -> None:
    source = (
        '{% load i18n %}{% block body_class %}page-admin{% endblock %}\n'
        '<h1>{% translate "Models" %}</h1>\n'
        '<p>Delete this model</p>\n'
        '<input placeholder="Your name" title="{% translate \'Name\' %}">\n'
        '<input placeholder="model.gguf">\n'
        '{% blocktranslate %}Hello {{ name }}{% endblocktranslate %}\n'
        '<script>const x = "Not text";</script>\n'
    )
    assert check.template_findings(source) == [(3, "Delete this model"), (4, "Your name")]


def test_unmarked_python_messages_are_found() -> None:
    source = (
        "from django.contrib import messages\n"
        "from django.utils.translation import gettext as _\n"
        "messages.success(request, 'Saved the model.')\n"
        "messages.success(request, _('Saved the model.'))\n"
        "raise ValidationError(f'No such user {name}')\n"
        "field = forms.CharField(label='Display name', help_text=_('Shown to others'))\n"
        "class Kind(models.TextChoices):\n"
        "    A = 'a', 'Alpha kind'\n"
        "    B = 'b', _('Beta kind')\n"
    )
    lines = [line for line, _value in check.python_findings(source)]
    assert lines == [3, 5, 6, 8]


def test_unwrapped_javascript_strings_are_found() -> None:
    source = (
        'status.textContent = "Connecting to the server";\n'
        'status.textContent = gettext("Connecting to the server");\n'
        'toast(`Saved ${name}`);\n'
        'button.setAttribute("aria-label", "Close menu");\n'
        'close.textContent = "\\u00d7";\n'
        '// toast("a comment is not text");\n'
    )
    assert [line for line, _value in check.javascript_findings(source)] == [1, 3, 4]


def test_placeholders_that_differ_are_reported() -> None:
    import polib

    po = polib.POFile()
    po.metadata = {"Content-Type": "text/plain; charset=UTF-8"}
    po.append(polib.POEntry(msgid="Hello %(name)s", msgstr="Hallo %(nom)s"))
    po.append(polib.POEntry(msgid="Untranslated", msgstr=""))
    po.append(polib.POEntry(msgid="Fine %s", msgstr="Gut %s"))
    problems = list(check.entry_problems(po))
    assert len(problems) == 2
    assert problems[0].startswith("placeholders ['%(nom)s'] differ from ['%(name)s']")
    assert problems[1].startswith("not translated: 'Untranslated'")
