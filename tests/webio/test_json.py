"""``webio.json.parse_json``: what strangers send, refused with one exception and a clear message."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import pytest
from django.utils import translation
from hypothesis import given, settings
from hypothesis import strategies as st

from webio.json import BadJson, parse_json, too_large

LIMIT = 1 << 20


def refusal(raw: bytes | str, **kwargs: Any) -> str:
    with pytest.raises(BadJson) as caught:
        parse_json(raw, **{"max_bytes": LIMIT, **kwargs})
    assert caught.value.message == str(caught.value)
    return caught.value.message


@pytest.mark.parametrize("raw", [b'{"a": [1, 2.5, "x", null, true]}', '{"a": [1, 2.5, "x", null, true]}'])
def test_valid_json_is_decoded(raw: bytes | str) -> None:
    assert parse_json(raw, max_bytes=LIMIT) == {"a": [1, 2.5, "x", None, True]}


def test_paired_surrogate_escapes_are_one_character() -> None:
    assert parse_json(rb'{"e": "\ud83d\ude00", "\ud83d\ude00": 1}', max_bytes=LIMIT) == {"e": "😀", "😀": 1}


def test_an_escaped_backslash_before_u_is_not_an_escape() -> None:
    assert parse_json(rb'["\\ud800", "\\u0000"]', max_bytes=LIMIT) == ["\\ud800", "\\u0000"]


def test_too_large_counts_bytes_not_characters() -> None:
    assert parse_json(b'"' + b"x" * 8 + b'"', max_bytes=10) == "x" * 8
    assert refusal(b'"' + b"x" * 9 + b'"', max_bytes=10) == "The request is too large (at most 10 bytes)."
    # Four characters, but ten bytes of UTF-8 once the three "é" are counted.
    assert parse_json('"éé"', max_bytes=6) == "éé"
    assert refusal('"ééé"', max_bytes=6) == "The request is too large (at most 6 bytes)."
    assert str(too_large(5)) == "The request is too large (at most 5 bytes)."


@pytest.mark.parametrize("raw", [b"\xff{}", b'{"a": "\xc3"}', b'"\xed\xa0\x80"', '{"a": 1}'.encode("utf-16")])
def test_bytes_that_are_not_utf8_are_refused(raw: bytes) -> None:
    assert refusal(raw) == "The request is not valid UTF-8 text."


@pytest.mark.parametrize(
    ("raw", "where"),
    [(b"", "line 1, column 1"), (b"{", "line 1, column 2"), (b'{"a": 1,}', "line 1, column 9"), (b"[1]\n[2]", "line 2, column 1"),
     (b'"\x01"', "line 1, column 2"), (b"\xef\xbb\xbf{}", "line 1, column 1"), (b'"abc', "line 1, column 1")],
)
def test_invalid_json_says_where(raw: bytes, where: str) -> None:
    assert refusal(raw) == f"The request is malformed: not valid JSON ({where})."


def test_nesting_is_limited_without_recursion() -> None:
    assert parse_json("[" * 32 + "]" * 32, max_bytes=LIMIT) is not None
    deep = "The request is nested too deeply (at most 32 levels)."
    assert refusal("[" * 33 + "]" * 33) == deep
    assert refusal('{"a":' * 33 + "1" + "}" * 33) == deep
    assert refusal("[{" * 17 + "}]" * 17) == deep
    assert refusal("[" * 3 + "]" * 3, max_depth=2) == "The request is nested too deeply (at most 2 levels)."


@pytest.mark.parametrize("depth", [1_000, sys.getrecursionlimit() * 2, 100_000, 500_000])
def test_hundreds_of_thousands_of_levels_are_refused_quickly(depth: int) -> None:
    started = time.perf_counter()
    for raw in ("[" * depth + "]" * depth, "[" * depth, '{"a":' * depth, "[" * depth + "1" + "]" * depth):
        assert "nested too deeply" in refusal(raw, max_bytes=10 * depth)
        assert "nested too deeply" in refusal(raw.encode(), max_bytes=10 * depth)
    # 8 documents of up to 5 MB each: 2.9 s once in a full CI run on 2 busy cores; a parser
    # that recursed or went quadratic would take minutes.
    assert time.perf_counter() - started < 5


def test_brackets_inside_strings_do_not_count() -> None:
    text = '["' + "[{" * 50_000 + '", "\\"[[[[", {"k[": "]]]"}]'
    assert parse_json(text, max_bytes=LIMIT)[0] == "[{" * 50_000
    # An unterminated string full of escaped quotes and brackets: linear, and invalid JSON.
    started = time.perf_counter()
    assert "not valid JSON" in refusal('["' + '\\"[' * 100_000)
    assert "not valid JSON" in refusal('"' * 200_000)
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize(
    "raw",
    [rb'"\ud800"', rb'{"a": "x\udfffy"}', rb'{"\ud800": 1}', rb'[["\uDBFF"]]', rb'"\ude00\ud83d"', '"\ud800"', '{"k": ["\udc00"]}'],
)
def test_unpaired_surrogates_are_refused(raw: bytes | str) -> None:
    assert refusal(raw) == (
        "The request contains an unpaired surrogate (such as \\ud800), which is not a character and cannot be stored."
    )


@pytest.mark.parametrize("raw", [rb'"a\u0000"', rb'{"\u0000": 1}', rb'[{"a": ["\u0000"]}]'])
def test_nul_characters_are_refused_unless_allowed(raw: bytes) -> None:
    assert refusal(raw) == "The request contains a NUL character (\\u0000), which cannot be stored."
    assert parse_json(raw, max_bytes=LIMIT, allow_nul=True) is not None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[NaN]", "The request contains NaN, which is not a JSON number."),
        (b'{"a": -Infinity}', "The request contains -Infinity, which is not a JSON number."),
        (b"1e999", "The request contains a number that is too large."),
        (b"[-1e400]", "The request contains a number that is too large."),
        (b"9" * 5000, "The request contains a number that is too large."),
    ],
)
def test_numbers_that_are_not_json_numbers_are_refused(raw: bytes, message: str) -> None:
    assert refusal(raw) == message


def test_big_but_ordinary_numbers_are_fine() -> None:
    assert parse_json(b"[1e308, 123456789012345678901234567890, -0.0]", max_bytes=LIMIT) == [1e308, 123456789012345678901234567890, -0.0]


def test_messages_go_through_gettext_when_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("webio.json._", lambda text: f"[{translation.get_language()}] {text}")
    with translation.override("de"):
        assert refusal(b"{") == "[de] The request is malformed: not valid JSON (line 1, column 2)."
        assert refusal(rb'"\ud800"').startswith("[de] The request contains an unpaired surrogate")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(value=json_values, ascii_only=st.booleans())
def test_what_json_dumps_writes_comes_back(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    if "\x00" in text or "\\u0000" in text:
        value_back = parse_json(text, max_bytes=LIMIT, allow_nul=True)
    else:
        value_back = parse_json(text.encode(), max_bytes=LIMIT)
    assert value_back == value


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=200) | st.text(st.characters(codec=None, exclude_categories=()), max_size=200))
def test_anything_else_is_a_value_or_bad_json(raw: bytes | str) -> None:
    try:
        parse_json(raw, max_bytes=LIMIT)
    except BadJson as exc:
        assert exc.message
