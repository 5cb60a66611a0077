"""Parse Ollama Modelfiles: FROM, SYSTEM, PARAMETER, TEMPLATE (here a Jinja chat template
for llama.cpp), MESSAGE (ignored), LICENSE (kept), ADAPTER (refused).

    FROM smollm2:135m
    SYSTEM \"\"\"You are a concise assistant.\"\"\"
    PARAMETER temperature 0.2
    PARAMETER stop "<|im_end|>"

Values may be bare, "double-quoted" or \"\"\"triple-quoted\"\"\" (spanning lines). Instructions are
case-insensitive, ``#`` starts a comment line, as in Ollama.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_MODELFILE_CHARS = 200_000
MAX_STOP_SEQUENCES = 16


class ModelfileError(ValueError):
    """The Modelfile (or a parameter) is not valid; the message says where and why."""


def _number(kind: type, low: float | None = None, high: float | None = None) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("not a number")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError("not a number") from None
        if not math.isfinite(number):
            raise ValueError("not a finite number")
        if kind is int:
            if not number.is_integer():
                raise ValueError("not a whole number")
            # Via the text, not the float: seeds are 64-bit and a float would round them.
            result: Any = int(value.strip()) if isinstance(value, str) and value.strip().lstrip("-").isdigit() else int(number)
        else:
            result = number
        if low is not None and result < low:
            raise ValueError(f"must be at least {low:g}")
        if high is not None and result > high:
            raise ValueError(f"must be at most {high:g}")
        return result

    return convert


def _stop(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    stops = [str(v) for v in values if str(v)]
    if len(stops) > MAX_STOP_SEQUENCES:
        raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences")
    return stops


# Ollama's parameters (its api.Options), with the range each one accepts here.
PARAMETERS: Mapping[str, Callable[[Any], Any]] = {
    "temperature": _number(float, 0, 100),
    "top_p": _number(float, 0, 1),
    "top_k": _number(int, 0, 100_000),
    "min_p": _number(float, 0, 1),
    "typical_p": _number(float, 0, 1),
    "repeat_penalty": _number(float, 0, 100),
    "repeat_last_n": _number(int, -1, 1_000_000),
    "presence_penalty": _number(float, -100, 100),
    "frequency_penalty": _number(float, -100, 100),
    "seed": _number(int, -(2**63), 2**63 - 1),
    "num_ctx": _number(int, 16, 10_000_000),
    "num_predict": _number(int, -2, 10_000_000),
    "num_keep": _number(int, -1, 10_000_000),
    "num_batch": _number(int, 1, 1_000_000),
    "num_gpu": _number(int, -1, 10_000),
    "num_thread": _number(int, 0, 10_000),
    "mirostat": _number(int, 0, 2),
    "mirostat_tau": _number(float, 0, 100),
    "mirostat_eta": _number(float, 0, 100),
    "stop": _stop,
}


def validate_parameters(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check names and ranges of Ollama parameters; returns them converted."""
    result: dict[str, Any] = {}
    for name, value in raw.items():
        converter = PARAMETERS.get(name)
        if converter is None:
            raise ModelfileError(f"Unknown parameter {name!r}. Known: {', '.join(sorted(PARAMETERS))}.")
        try:
            result[name] = converter(value)
        except (TypeError, ValueError) as exc:
            raise ModelfileError(f"Parameter {name} = {value!r} is not valid: {exc}.") from None
    return result


@dataclass
class Modelfile:
    from_: str = ""
    system: str | None = None
    template: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    messages: list[tuple[str, str]] = field(default_factory=list)
    license: list[str] = field(default_factory=list)


_INSTRUCTION_RE = re.compile(r"([A-Za-z]+)(?:[ \t]+|$)")


def _value(text: str, pos: int, line_no: int) -> tuple[str, int]:
    """Read one value starting at ``pos``: triple-quoted, quoted, or the rest of the line."""
    if text.startswith('"""', pos):
        end = text.find('"""', pos + 3)
        if end < 0:
            raise ModelfileError(f'Line {line_no}: a """ value is never closed.')
        return text[pos + 3 : end], end + 3
    line_end = text.find("\n", pos)
    line_end = len(text) if line_end < 0 else line_end
    line = text[pos:line_end].strip()
    if len(line) >= 2 and line[0] == line[-1] == '"':
        line = line[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return line, line_end


def parse_modelfile(text: str) -> Modelfile:
    if len(text) > MAX_MODELFILE_CHARS:
        raise ModelfileError(f"The Modelfile is longer than {MAX_MODELFILE_CHARS} characters.")
    text = text.replace("\r\n", "\n")
    result = Modelfile()
    raw_parameters: dict[str, Any] = {}
    pos = 0
    while pos < len(text):
        line_no = text.count("\n", 0, pos) + 1
        # Skip blank space and comment lines.
        if text[pos] in " \t\n":
            pos += 1
            continue
        if text[pos] == "#":
            end = text.find("\n", pos)
            pos = len(text) if end < 0 else end
            continue
        match = _INSTRUCTION_RE.match(text, pos)
        if match is None:
            raise ModelfileError(f"Line {line_no}: expected an instruction such as FROM, SYSTEM or PARAMETER.")
        instruction = match.group(1).upper()
        pos = match.end()
        if instruction == "PARAMETER":
            name_match = re.compile(r"([A-Za-z_]+)[ \t]+").match(text, pos)
            if name_match is None:
                raise ModelfileError(f"Line {line_no}: PARAMETER needs a name and a value.")
            name = name_match.group(1).lower()
            value, pos = _value(text, name_match.end(), line_no)
            if name == "stop":
                raw_parameters.setdefault("stop", []).append(value)
            else:
                raw_parameters[name] = value
        elif instruction == "MESSAGE":
            role_match = re.compile(r"(system|user|assistant)[ \t]+", re.IGNORECASE).match(text, pos)
            if role_match is None:
                raise ModelfileError(f"Line {line_no}: MESSAGE needs a role (system, user, assistant) and text.")
            value, pos = _value(text, role_match.end(), line_no)
            result.messages.append((role_match.group(1).lower(), value))
        elif instruction in ("FROM", "SYSTEM", "TEMPLATE", "LICENSE", "ADAPTER"):
            value, pos = _value(text, pos, line_no)
            if instruction == "FROM":
                result.from_ = value.strip()
            elif instruction == "SYSTEM":
                result.system = value
            elif instruction == "TEMPLATE":
                result.template = value
            elif instruction == "LICENSE":
                result.license.append(value)
            else:
                raise ModelfileError(f"Line {line_no}: ADAPTER (LoRA adapters) is not supported.")
        else:
            raise ModelfileError(f"Line {line_no}: unknown instruction {match.group(1)!r}.")
    result.parameters = validate_parameters(raw_parameters)
    return result
