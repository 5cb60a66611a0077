"""Ollama Modelfile parsing: the instructions, quoting forms and parameter checks."""

from __future__ import annotations

import pytest

from models_admin.modelfile import ModelfileError, parse_modelfile, validate_parameters


def test_a_full_modelfile() -> None:
    parsed = parse_modelfile(
        '''# Support assistant
FROM smollm2:135m
from ignored-case-check:latest
SYSTEM """You are the help desk.
Answer in two sentences."""
TEMPLATE """{% for m in messages %}{{ m['content'] }}{% endfor %}"""
PARAMETER temperature 0.2
PARAMETER top_k 20
PARAMETER num_ctx 2048
PARAMETER stop "<|im_end|>"
PARAMETER stop User:
PARAMETER seed 7
MESSAGE user Is this thing on?
MESSAGE assistant Yes.
LICENSE """Apache 2.0"""
'''
    )
    assert parsed.from_ == "ignored-case-check:latest"  # the last FROM wins, as in Ollama
    assert parsed.system == "You are the help desk.\nAnswer in two sentences."
    assert parsed.template == "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    assert parsed.parameters == {"temperature": 0.2, "top_k": 20, "num_ctx": 2048, "stop": ["<|im_end|>", "User:"], "seed": 7}
    assert parsed.messages == [("user", "Is this thing on?"), ("assistant", "Yes.")]
    assert parsed.license == ["Apache 2.0"]


def test_quoted_single_line_values() -> None:
    parsed = parse_modelfile('FROM base\nSYSTEM "Say \\"hi\\" first."\n')
    assert parsed.system == 'Say "hi" first.'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROM x\nPARAMETER temperature hot\n", "temperature"),
        ("FROM x\nPARAMETER top_p 1.5\n", "at most 1"),
        ("FROM x\nPARAMETER top_k -1\n", "at least 0"),
        ("FROM x\nPARAMETER seed 1.5\n", "whole number"),
        ("FROM x\nPARAMETER temperature nan\n", "finite"),
        ("FROM x\nPARAMETER mystery 1\n", "Unknown parameter 'mystery'"),
        ("FROM x\nPARAMETER\n", "needs a name and a value"),
        ("FROM x\nMESSAGE robot hi\n", "MESSAGE needs a role"),
        ("FROM x\nQUANTIZE q4\n", "unknown instruction 'QUANTIZE'"),
        ("FROM x\n$$$\n", "expected an instruction"),
        ('FROM x\nSYSTEM """open\n', "never closed"),
        ("FROM x\nADAPTER lora.gguf\n", "ADAPTER"),
    ],
)
def test_invalid_modelfiles_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ModelfileError, match=message.replace("(", r"\(")):
        parse_modelfile(text)


def test_api_parameters_are_checked_the_same_way() -> None:
    assert validate_parameters({"temperature": 1, "stop": "###", "num_predict": 128}) == {
        "temperature": 1.0, "stop": ["###"], "num_predict": 128,
    }
    with pytest.raises(ModelfileError):
        validate_parameters({"temperature": True})
    with pytest.raises(ModelfileError):
        validate_parameters({"stop": [str(i) for i in range(20)]})
