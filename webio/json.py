"""JSON from strangers: one exception with a person-readable message, and no surprises.

``parse_json`` refuses, with ``BadJson``, what ``json.loads`` either lets through or fails on
in ways a door must not pass on:

- more than ``max_bytes`` (checked before anything is decoded);
- bytes that are not UTF-8 (``json.loads`` would guess UTF-16 or UTF-32 from the first bytes);
- nesting deeper than ``max_depth``: a linear scan counts the brackets outside strings
  *before* decoding, so the decoder never recurses far (on ~100k levels ``json.loads``
  raises ``RecursionError``, which no door expects);
- unpaired surrogates (``"\\ud800"``) in strings or keys: Python decodes them, but they are
  not characters, cannot be encoded as UTF-8, and PostgreSQL cannot store them;
- NUL characters (``"\\u0000"``), which PostgreSQL cannot store in text either (pass
  ``allow_nul=True`` where the value never reaches the database);
- ``NaN``, ``Infinity`` and numbers that overflow (``1e999``, integers of thousands of
  digits): not JSON, and they could not be sent back as JSON.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any, NoReturn

from django.utils.translation import gettext as _

__all__ = ["BadJson", "parse_json", "too_large"]


class BadJson(ValueError):
    """The input was refused; ``message`` says why, in the active language."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# A string, terminated or not (then it runs to the end): the greedy path always matches,
# so matching never backtracks, and an unterminated string is consumed once, not rescanned.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# Escapes that may decode to a lone surrogate or a NUL; only then are the values walked.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:[dD][89a-fA-F]|0000)")
_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_json(raw: bytes | str, *, max_bytes: int, max_depth: int = 32, allow_nul: bool = False) -> Any:
    """Decode ``raw`` (UTF-8 bytes, or text) as JSON; ``BadJson`` for anything refused."""
    text = _text(raw, max_bytes)
    _check_depth(text, max_depth)
    try:
        value = json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
    except BadJson:
        raise
    except json.JSONDecodeError as exc:
        where = {"line": exc.lineno, "column": exc.colno}
        raise BadJson(_("The request is malformed: not valid JSON (line %(line)d, column %(column)d).") % where) from None
    except ValueError:  # an integer beyond Python's digit limit (4300 digits)
        raise BadJson(_("The request contains a number that is too large.")) from None
    except RecursionError:  # cannot happen after the depth check, and must never escape
        raise _too_deep(max_depth) from None
    if _SUSPECT_ESCAPE.search(text):
        _check_strings(value, allow_nul=allow_nul)
    return value


def _text(raw: bytes | str, max_bytes: int) -> str:
    if isinstance(raw, str):
        # Characters never take fewer bytes than one, nor more than four, in UTF-8.
        if len(raw) > max_bytes or (len(raw) * 4 > max_bytes and len(raw.encode("utf-8", "surrogatepass")) > max_bytes):
            raise too_large(max_bytes)
        if _SURROGATE.search(raw):
            _surrogate()
        return raw
    if len(raw) > max_bytes:
        raise too_large(max_bytes)
    try:
        # Strict UTF-8: encoded surrogates (b"\xed\xa0\x80") are refused here too.
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise BadJson(_("The request is not valid UTF-8 text.")) from None


def _check_depth(text: str, max_depth: int) -> None:
    """The deepest ``[``/``{`` level outside strings, in linear time and without recursion.

    Exact for valid JSON; for invalid JSON it is exact up to the first error, which is as far
    as the decoder gets, so the decoder never goes deeper than this allows.
    """
    if text.count("[") + text.count("{") <= max_depth:
        return  # not even counting the brackets inside strings: the common, short case
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if brackets and max(accumulate(map(_STEP.__getitem__, brackets))) > max_depth:
        raise _too_deep(max_depth)


def _check_strings(value: Any, *, allow_nul: bool) -> None:
    """Every string and key of ``value``, iteratively (its depth is bounded, but need not be)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            _check_string(item, allow_nul)
        elif isinstance(item, dict):
            for key, child in item.items():
                _check_string(key, allow_nul)
                pending.append(child)
        elif isinstance(item, list):
            pending.extend(item)


def _check_string(text: str, allow_nul: bool) -> None:
    if _SURROGATE.search(text):
        _surrogate()
    if not allow_nul and "\x00" in text:
        raise BadJson(_("The request contains a NUL character (\\u0000), which cannot be stored."))


def _finite_float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise BadJson(_("The request contains a number that is too large."))
    return number


def _no_constant(name: str) -> NoReturn:
    raise BadJson(_("The request contains %(value)s, which is not a JSON number.") % {"value": name})


def too_large(max_bytes: int) -> BadJson:
    """The refusal of a request over ``max_bytes``, for a caller that measured it itself."""
    return BadJson(_("The request is too large (at most %(limit)d bytes).") % {"limit": max_bytes})


def _too_deep(max_depth: int) -> BadJson:
    return BadJson(_("The request is nested too deeply (at most %(limit)d levels).") % {"limit": max_depth})


def _surrogate() -> NoReturn:
    raise BadJson(
        _("The request contains an unpaired surrogate (such as \\ud800), which is not a character and cannot be stored.")
    )
