"""The per-token chunk templates write exactly what encoding the whole chunk would."""

from __future__ import annotations

import json

import pytest

from api.streaming import ChunkTemplate, ndjson_line, sse_event

TEXTS = ["Hello", ' "quoted" \\ back', "</script><b>x</b>", "naïve 中文 😀", "\n\t", "\x00slot0\x00"]


@pytest.mark.parametrize("text", TEXTS)
def test_sse_template_matches_the_full_encoding(text: str) -> None:
    def chunk(value: str) -> dict[str, object]:
        return {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"content": value}, "finish_reason": None}]}

    template = ChunkTemplate(chunk(ChunkTemplate.slot(0)), sse=True)
    assert template(text) == sse_event(chunk(text))
    assert json.loads(template(text)[6:])["choices"][0]["delta"]["content"] == text


@pytest.mark.parametrize("text", TEXTS)
def test_ndjson_template_with_two_slots_matches_the_full_encoding(text: str) -> None:
    def line(created: str, value: str) -> dict[str, object]:
        return {"model": "m", "created_at": created, "message": {"role": "assistant", "content": value}, "done": False}

    template = ChunkTemplate(line(ChunkTemplate.slot(0), ChunkTemplate.slot(1)), sse=False)
    assert template("2026-12-02T00:00:00Z", text) == ndjson_line(line("2026-12-02T00:00:00Z", text))


def test_a_sample_without_a_slot_is_refused() -> None:
    with pytest.raises(ValueError):
        ChunkTemplate({"text": "plain"}, sse=True)
