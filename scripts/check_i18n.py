"""Fail when the translations are incomplete: `make check` runs this.

Three checks, each naming file and line of every finding:

1. **Unmarked strings.** Text a person reads that is not marked for translation:
   - templates: text between tags, and the ``title``, ``placeholder``, ``aria-label``,
     ``alt`` and ``aria-description`` attributes, outside ``{% translate %}`` /
     ``{% blocktranslate %}``;
   - Python: string literals given to ``messages.*``, ``ValidationError``, form fields'
     ``label``/``help_text``/``empty_label``, ``verbose_name`` and choices' labels, and the
     ``message=`` of readable errors, when not inside ``gettext`` & co.;
   - JavaScript (static/js): literals given to ``textContent``, ``title``, ``placeholder``,
     ``toast()``, ``announce()`` and ``setAttribute("aria-label"|"title"|"placeholder", ...)``
     that are not wrapped in ``gettext()``.
   Heuristics, so words that are the same in every language (the product's brand, "API",
   "Ollama", "OpenAI", "GGUF", ...) are allowed by name below.
2. **Stale catalogs.** ``makemessages`` is run into a temporary copy of ``locale/``; the set
   of message ids must equal the committed catalogs' (no string missing, none obsolete).
3. **Missing translations.** Every entry of every language has a translation that is not
   fuzzy and keeps the placeholders (``%(name)s``, ``%s``, ``{name}``) of its source.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "locale"
LANGUAGES = ["de", "es", "fr", "zh_Hans"]
DOMAINS = ["django", "djangojs"]
# Apps whose Python is scanned (the same list makemessages walks, minus tests and tooling).
PY_DIRS = ["accounts", "api", "audit", "chat", "directory", "generation", "health", "inference",
           "models_admin", "platform", "projects", "usage", "webio"]
JS_DIR = ROOT / "static" / "js"
TEMPLATES = ROOT / "templates"

# Words that read the same in every language of the product.
ALLOWED_WORDS = {
    "api", "ollama", "openai", "gguf", "vllm", "llama.cpp", "chatbox", "json", "csv", "zip", "md",
    "markdown", "oidc", "sso", "url", "id", "ok", "utc", "http", "https", "huggingface", "hugging",
    "face", "smollm2", "github", "email", "e-mail", "sha256", "gpu", "cpu", "ram", "vram", "gib",
    "mib", "kib", "tb", "gb", "mb", "kb", "b", "q4_k_m", "tokens/s",
}
# The product's name comes from settings and is not translated.
ATTRS = {"title", "placeholder", "aria-label", "alt", "aria-description"}
WORD = re.compile(r"[A-Za-z][A-Za-z'’-]+")


def _human_words(text: str) -> list[str]:
    """The words of ``text`` that need a translation (two letters or more, not allowed)."""
    return [w for w in WORD.findall(text) if len(w) > 1 and w.lower() not in ALLOWED_WORDS]


# --- 1a. Templates -------------------------------------------------------------------------

_TRANS_BLOCK = re.compile(r"{%\s*(blocktranslate|blocktrans)\b.*?{%\s*(endblocktranslate|endblocktrans)\s*%}", re.S)
_TAG = re.compile(r"{%.*?%}|{{.*?}}|{#.*?#}", re.S)
_COMMENT = re.compile(r"{%\s*comment\s*%}.*?{%\s*endcomment\s*%}", re.S)
# Blocks that hold class names or other markup, not text.
_CODE_BLOCK = re.compile(r"{%\s*block\s+(body_class|main_class|extra_css|extra_head|scripts)\s*%}.*?{%\s*endblock\b.*?%}", re.S)
# An example a person types as it is (a URL, a file or model name): no spaces, some punctuation.
_CODE_LIKE = re.compile(r"^[^\s]*[/.:_][^\s]*$")


class _TextFinder(HTMLParser):
    """Collects the visible text and the read-aloud attributes of an HTML fragment."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[int, str]] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "style"}:
            self._skip += 1
        for name, value in attrs:
            if name in ATTRS and value:
                self.found.append((self.getpos()[0], value))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ATTRS and value:
                self.found.append((self.getpos()[0], value))

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style"} and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.found.append((self.getpos()[0], data))


def _blank(match: re.Match[str]) -> str:
    """Replace a matched span with as many newlines as it held, so line numbers stay right."""
    return "\n" * match.group(0).count("\n") + " "


def template_findings(source: str) -> list[tuple[int, str]]:
    """(line, text) of every unmarked text in a template's source."""
    text = _COMMENT.sub(_blank, source)
    text = _CODE_BLOCK.sub(_blank, text)
    text = _TRANS_BLOCK.sub(_blank, text)
    text = _TAG.sub(_blank, text)
    finder = _TextFinder()
    finder.feed(text)
    return [(line, value.strip()) for line, value in finder.found
            if not _CODE_LIKE.match(value.strip()) and _human_words(value)]


def unmarked_in_templates() -> Iterator[str]:
    for path in sorted(TEMPLATES.rglob("*.html")):
        for line, value in template_findings(path.read_text(encoding="utf-8")):
            yield f"{path.relative_to(ROOT)}:{line}: not marked for translation: {value[:70]!r}"


# --- 1b. Python ----------------------------------------------------------------------------

_GETTEXT = {"_", "gettext", "gettext_lazy", "ngettext", "ngettext_lazy", "pgettext", "pgettext_lazy",
            "npgettext", "format_lazy", "gettext_noop", "_lazy"}
_MESSAGE_CALLS = {"success", "error", "info", "warning", "debug"}
_KEYWORDS = {"label", "help_text", "empty_label", "verbose_name", "verbose_name_plural", "message",
             "title", "description"}


def _is_literal(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return bool(_human_words(node.value))
    if isinstance(node, ast.JoinedStr):  # an f-string is English by construction
        return any(isinstance(v, ast.Constant) and _human_words(str(v.value)) for v in node.values)
    return False


def _callee(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


class _PyFinder(ast.NodeVisitor):
    def __init__(self) -> None:
        self.found: list[tuple[int, str]] = []

    def visit_Call(self, node: ast.Call) -> None:
        name = _callee(node)
        if name in _GETTEXT:
            return  # marked: do not look inside
        target_module = node.func.value if isinstance(node.func, ast.Attribute) else None
        is_messages = isinstance(target_module, ast.Name) and target_module.id == "messages"
        if (is_messages and name in _MESSAGE_CALLS) or name == "ValidationError":
            for arg in node.args[1 if is_messages else 0:][:1]:
                if _is_literal(arg):
                    self.found.append((arg.lineno, ast.unparse(arg)))
        for keyword in node.keywords:
            if keyword.arg in _KEYWORDS and _is_literal(keyword.value):
                self.found.append((keyword.value.lineno, ast.unparse(keyword.value)))
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        # TextChoices labels: NAME = "value", "Label"
        if any(isinstance(b, ast.Attribute | ast.Name) and getattr(b, "attr", getattr(b, "id", "")).endswith("Choices")
               for b in node.bases):
            for statement in node.body:
                if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Tuple):
                    elements = statement.value.elts
                    if len(elements) == 2 and _is_literal(elements[1]):
                        self.found.append((elements[1].lineno, ast.unparse(elements[1])))
        self.generic_visit(node)


def python_findings(source: str) -> list[tuple[int, str]]:
    """(line, literal) of every unmarked user-facing literal in a Python module's source."""
    finder = _PyFinder()
    finder.visit(ast.parse(source))
    return finder.found


def unmarked_in_python() -> Iterator[str]:
    for directory in PY_DIRS:
        for path in sorted((ROOT / directory).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for line, value in python_findings(path.read_text(encoding="utf-8")):
                yield f"{path.relative_to(ROOT)}:{line}: not marked for translation: {value[:70]}"


# --- 1c. JavaScript ------------------------------------------------------------------------

_JS_STRING = r"""(?P<q>["'`])(?P<s>(?:\\.|(?!(?P=q)).)*)(?P=q)"""
_JS_PATTERNS = [
    re.compile(r"\.(?:textContent|title|placeholder|ariaLabel)\s*=\s*" + _JS_STRING),
    re.compile(r"\b(?:toast|announce|alert|confirm)\(\s*" + _JS_STRING),
    re.compile(r"""setAttribute\(\s*["'](?:aria-label|title|placeholder)["']\s*,\s*""" + _JS_STRING),
]


def javascript_findings(source: str) -> list[tuple[int, str]]:
    """(line, literal) of every user-facing JavaScript literal not wrapped in gettext()."""
    found = []
    for number, line in enumerate(source.splitlines(), 1):
        if line.lstrip().startswith("//"):
            continue
        for pattern in _JS_PATTERNS:
            for match in pattern.finditer(line):
                value = re.sub(r"\$\{.*?\}", "", match.group("s"))
                if _human_words(value):
                    found.append((number, match.group("s")))
    return found


def unmarked_in_javascript() -> Iterator[str]:
    for path in sorted(JS_DIR.rglob("*.js")):
        for line, value in javascript_findings(path.read_text(encoding="utf-8")):
            yield f"{path.relative_to(ROOT)}:{line}: not wrapped in gettext(): {value[:70]!r}"


# --- 2. Stale catalogs ---------------------------------------------------------------------

def _ids(path: Path) -> set[tuple[str | None, str, str]]:
    return {(e.msgctxt, e.msgid, e.msgid_plural) for e in polib.pofile(str(path)) if not e.obsolete}


# What makemessages reads: the apps, the templates and the project's own JavaScript.
SOURCES = [*PY_DIRS, "templates", "static"]


def makemessages(locale_dir: Path) -> None:
    """Extract every marked string into the catalogs under ``locale_dir``.

    makemessages walks the current directory and files each source under the ``locale``
    folder beside it, so for a copy it runs in a tree of links to the sources whose only
    ``locale`` is the copy; otherwise it would write into the real catalogs.
    """
    env = dict(os.environ, LOCALE_DIR=str(locale_dir), DATABASE_URL="")
    # Directory names: makemessages matches them against every directory's name.
    common = ["--no-obsolete", "--add-location=file", "--symlinks"] + [
        f"--ignore={name}" for name in (".venv", "node_modules", "tests", "bench", "scripts", "var", "vendor")
    ]
    langs = [arg for lang in LANGUAGES for arg in ("-l", lang)]
    manage = [sys.executable, str(ROOT / "manage.py"), "makemessages", *langs, *common]
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp)
        for name in SOURCES:
            (tree / name).symlink_to(ROOT / name)
        (tree / "locale").symlink_to(locale_dir)
        for domain in DOMAINS:
            subprocess.run([*manage, "-d", domain], cwd=tree, env=env, check=True, capture_output=True)


def compile_catalogs(locale_dir: Path) -> None:
    """Write each catalog's ``.mo`` next to it (polib, so no gettext tools are needed to run)."""
    for po in sorted(locale_dir.glob("*/LC_MESSAGES/*.po")):
        polib.pofile(str(po)).save_as_mofile(str(po.with_suffix(".mo")))


def update() -> None:
    """``make messages``: extract the marked strings into locale/ and compile the catalogs."""
    LOCALE.mkdir(exist_ok=True)
    makemessages(LOCALE)
    compile_catalogs(LOCALE)


def stale_catalogs() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "locale"
        if LOCALE.exists():
            shutil.copytree(LOCALE, fresh)
        else:
            fresh.mkdir()
        makemessages(fresh)
        for lang in LANGUAGES:
            for domain in DOMAINS:
                committed = LOCALE / lang / "LC_MESSAGES" / f"{domain}.po"
                regenerated = fresh / lang / "LC_MESSAGES" / f"{domain}.po"
                if not committed.exists():
                    yield f"{committed.relative_to(ROOT)}: missing (run `make messages`)"
                    continue
                new, old = _ids(regenerated), _ids(committed)
                for ctxt, msgid, _plural in sorted(new - old, key=str)[:20]:
                    yield f"{committed.relative_to(ROOT)}: stale, lacks {msgid[:70]!r} (run `make messages`)"
                for ctxt, msgid, _plural in sorted(old - new, key=str)[:20]:
                    yield f"{committed.relative_to(ROOT)}: stale, no longer used: {msgid[:70]!r} (run `make messages`)"


def stale_compiled() -> Iterator[str]:
    """The committed ``.mo`` files are what the ``.po`` files compile to."""
    with tempfile.TemporaryDirectory() as tmp:
        for po in sorted(LOCALE.glob("*/LC_MESSAGES/*.po")):
            fresh = Path(tmp) / "fresh.mo"
            polib.pofile(str(po)).save_as_mofile(str(fresh))
            committed = po.with_suffix(".mo")
            if not committed.exists() or committed.read_bytes() != fresh.read_bytes():
                yield f"{committed.relative_to(ROOT)}: not compiled from its .po (run `make messages`)"


# --- 3. Missing translations ---------------------------------------------------------------

_PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]|\{\w*\}")


def entry_problems(catalog: polib.POFile) -> Iterator[str]:
    """``"<problem>: <msgid>"`` for each entry that is fuzzy, empty or loses a placeholder."""
    for entry in catalog:
        if entry.obsolete:
            continue
        where = f"line {entry.linenum}" if entry.linenum else ""
        if "fuzzy" in entry.flags:
            yield f"fuzzy: {entry.msgid[:70]!r} {where}"
            continue
        translations = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        if not translations or not all(t.strip() for t in translations):
            yield f"not translated: {entry.msgid[:70]!r} {where}"
            continue
        wanted = sorted(_PLACEHOLDER.findall(entry.msgid))
        allowed = set(wanted + _PLACEHOLDER.findall(entry.msgid_plural or ""))
        for text in translations:
            got = sorted(_PLACEHOLDER.findall(text))
            # A plural's forms may use the plural's placeholders (or leave the number out).
            if got != wanted and not (entry.msgid_plural and set(got) <= allowed):
                yield f"placeholders {got} differ from {wanted}: {entry.msgid[:60]!r} {where}"
                break


def untranslated() -> Iterator[str]:
    for lang in LANGUAGES:
        for domain in DOMAINS:
            path = LOCALE / lang / "LC_MESSAGES" / f"{domain}.po"
            if path.exists():
                for problem in entry_problems(polib.pofile(str(path))):
                    yield f"{path.relative_to(ROOT)}: {problem}"


def main() -> int:
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    if "--update" in sys.argv:
        update()
    problems = [*unmarked_in_templates(), *unmarked_in_python(), *unmarked_in_javascript()]
    if "--unmarked-only" not in sys.argv:
        problems += [*stale_catalogs(), *stale_compiled(), *untranslated()]
    for problem in problems:
        print(problem)
    if problems:
        print(f"\n{len(problems)} translation problem(s); see docs/TRANSLATING.md", file=sys.stderr)
        if "--update" in sys.argv:
            return 0  # the catalogs were just written; what is left is for the translators
        return 1
    if "--unmarked-only" in sys.argv:
        print("Every user-visible string is marked for translation.")
    else:
        print("Translations complete: every string marked, catalogs current, all languages translated.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
