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

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from inference import parameters

MAX_MODELFILE_CHARS = 200_000


class ModelfileError(ValueError):
    """The Modelfile (or a parameter) is not valid; the message says where and why."""


def validate_parameters(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check names and ranges of Ollama parameters (the one table, ``inference.parameters``);
    returns them converted, under their Ollama names."""
    try:
        return parameters.from_ollama(raw, modelfile=True)
    except parameters.ParameterError as exc:
        if exc.problem.startswith("is not a known"):
            raise ModelfileError(f"Unknown parameter {exc.field!r}. Known: {', '.join(sorted(parameters.BY_OLLAMA))}.") from None
        raise ModelfileError(f"Parameter {exc.field} = {raw.get(exc.field)!r} is not valid: {exc.problem}.") from None


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
