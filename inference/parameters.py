"""The one table of sampling parameters: name, type, range, and what each protocol calls it.

The API schemas (``/api/*`` options and ``/v1/*`` bodies), Modelfile validation, the
custom-model form and the engine request body are all derived from ``PARAMETERS``; a range
changed here changes everywhere at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

MAX_STOP_SEQUENCES = 16
MAX_STOP_LENGTH = 200

Kind = Literal["int", "float", "stops"]


@dataclass(frozen=True)
class Parameter:
    """One sampling parameter.

    ``name`` is the engine's name (OpenAI-style, what ``GenerationOptions`` carries);
    ``ollama`` and ``openai`` are the names clients use (None: that protocol has no such
    field); ``per_request`` is False for parameters only an administrator sets on a model.
    ``engine`` False: accepted in Modelfiles for compatibility but not sent to the engines.
    """

    name: str
    kind: Kind
    minimum: float | None
    maximum: float | None
    ollama: str | None
    openai: str | None
    label: StrOrPromise
    help: StrOrPromise = ""
    per_request: bool = True
    engine: bool = True

    def convert(self, value: Any) -> Any:
        """The value in this parameter's type, or ValueError saying what is wrong."""
        if self.kind == "stops":
            return _stops(value)
        if isinstance(value, bool) or value is None:
            raise ValueError("must be a number")
        if isinstance(value, str):
            # Modelfiles and form fields are text; JSON clients send numbers.
            try:
                number: float = float(value.strip())
            except ValueError:
                raise ValueError("must be a number") from None
        elif isinstance(value, int | float):
            if isinstance(value, int) and abs(value) >= 2**64:
                # Python's ints are unbounded; float() of one this size raises OverflowError.
                raise ValueError("is too large")
            number = value
        else:
            raise ValueError("must be a number")
        if not math.isfinite(number):
            raise ValueError("must be a finite number")
        result: int | float
        if self.kind == "int":
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                result = int(value.strip())  # via the text: 64-bit seeds would round as floats
            elif float(number).is_integer():
                result = int(number)
            else:
                raise ValueError("must be a whole number")
        else:
            result = float(number)
        if self.minimum is not None and result < self.minimum:
            raise ValueError(f"must be at least {self.minimum:g}")
        if self.maximum is not None and result > self.maximum:
            raise ValueError(f"must be at most {self.maximum:g}")
        return result


def _stops(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in values):
        raise ValueError("must be text or a list of texts")
    stops = [str(v) for v in values if str(v)]
    if len(stops) > MAX_STOP_SEQUENCES:
        raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences")
    if any(len(stop) > MAX_STOP_LENGTH for stop in stops):
        raise ValueError(f"a stop sequence has at most {MAX_STOP_LENGTH} characters")
    return stops


_INT64 = 2**63

PARAMETERS: tuple[Parameter, ...] = (
    Parameter("max_tokens", "int", -2, 10_000_000, "num_predict", "max_tokens", _("Answer length limit"),
              _("Most tokens in one answer (0 or less: the platform's default; capped by the model's limit).")),
    Parameter("temperature", "float", 0, 100, "temperature", "temperature", _("Temperature"),
              _("Higher is more varied, 0 is always the most likely token.")),
    Parameter("top_p", "float", 0, 1, "top_p", "top_p", _("Top P"),
              _("Sample only from the most likely tokens that add up to this probability.")),
    Parameter("top_k", "int", 0, 100_000, "top_k", "top_k", _("Top K"),
              _("Sample only from this many most likely tokens (0: no limit).")),
    Parameter("min_p", "float", 0, 1, "min_p", "min_p", _("Min P"),
              _("Drop tokens less likely than this fraction of the most likely one.")),
    Parameter("repeat_penalty", "float", 0, 100, "repeat_penalty", "repeat_penalty", _("Repeat penalty"),
              _("Above 1 discourages repeating recent tokens.")),
    Parameter("presence_penalty", "float", -100, 100, "presence_penalty", "presence_penalty", _("Presence penalty"),
              _("Positive values push towards new topics.")),
    Parameter("frequency_penalty", "float", -100, 100, "frequency_penalty", "frequency_penalty", _("Frequency penalty"),
              _("Positive values discourage repeating the same words.")),
    Parameter("seed", "int", -_INT64, _INT64 - 1, "seed", "seed", _("Seed"),
              _("The same seed and settings give the same answer.")),
    Parameter("stop", "stops", None, None, "stop", "stop", _("Stop sequences"),
              _("The answer ends before any of these texts.")),
    # Administrators only: the context a chat gets is the model's setting, not the client's.
    Parameter("num_ctx", "int", 16, 10_000_000, "num_ctx", None, _("Context length"),
              _("Tokens of conversation the model sees (the engine's slot size may lower it)."), per_request=False,
              engine=False),
    # Ollama's other options: accepted in Modelfiles so existing ones load; the engines here
    # choose these themselves.
    Parameter("typical_p", "float", 0, 1, "typical_p", None, _("Typical P"), engine=False),
    Parameter("repeat_last_n", "int", -1, 1_000_000, "repeat_last_n", None, _("Repeat window"), engine=False),
    Parameter("num_keep", "int", -1, 10_000_000, "num_keep", None, _("Tokens kept"), engine=False),
    Parameter("num_batch", "int", 1, 1_000_000, "num_batch", None, _("Batch size"), engine=False),
    Parameter("num_gpu", "int", -1, 10_000, "num_gpu", None, _("GPU layers"), engine=False),
    Parameter("num_thread", "int", 0, 10_000, "num_thread", None, _("Threads"), engine=False),
    Parameter("mirostat", "int", 0, 2, "mirostat", None, _("Mirostat"), engine=False),
    Parameter("mirostat_tau", "float", 0, 100, "mirostat_tau", None, _("Mirostat tau"), engine=False),
    Parameter("mirostat_eta", "float", 0, 100, "mirostat_eta", None, _("Mirostat eta"), engine=False),
)

BY_NAME: Mapping[str, Parameter] = {p.name: p for p in PARAMETERS}
BY_OLLAMA: Mapping[str, Parameter] = {p.ollama: p for p in PARAMETERS if p.ollama}
BY_OPENAI: Mapping[str, Parameter] = {p.openai: p for p in PARAMETERS if p.openai}
# OpenAI's newer name for max_tokens.
_OPENAI_ALIASES = {"max_completion_tokens": "max_tokens"}


class ParameterError(ValueError):
    """A bad parameter, naming it as the client called it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem


def _convert(parameter: Parameter, field: str, value: Any) -> Any:
    try:
        return parameter.convert(value)
    except ValueError as exc:
        raise ParameterError(field, str(exc)) from None


def from_ollama(options: Mapping[str, Any], *, modelfile: bool = False) -> dict[str, Any]:
    """Ollama ``options`` (or Modelfile PARAMETERs) in engine names, validated.

    Requests: unknown and administrator-only options are ignored, as Ollama's clients send
    many. Modelfiles (``modelfile``): every known one is kept under its Ollama name (the
    registry stores them so), unknown names are refused.
    """
    result: dict[str, Any] = {}
    for field, value in options.items():
        parameter = BY_OLLAMA.get(field)
        if parameter is None:
            if modelfile:
                raise ParameterError(field, f"is not a known parameter (known: {', '.join(sorted(BY_OLLAMA))})")
            continue
        if value is None:
            continue
        if modelfile:
            result[field] = _convert(parameter, field, value)
        elif parameter.per_request and parameter.engine:
            result[parameter.name] = _convert(parameter, field, value)
    return result


def from_openai(body: Mapping[str, Any]) -> dict[str, Any]:
    """The sampling fields of an OpenAI request body in engine names, validated."""
    result: dict[str, Any] = {}
    for field, value in body.items():
        parameter = BY_OPENAI.get(_OPENAI_ALIASES.get(field, field))
        if parameter is None or value is None or not parameter.per_request:
            continue
        result[parameter.name] = _convert(parameter, field, value)
    return result


def model_defaults(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """A model's stored (Ollama-named) parameters as engine options for every request."""
    return {
        BY_OLLAMA[key].name: value
        for key, value in parameters.items()
        if key in BY_OLLAMA and BY_OLLAMA[key].engine
    }


def engine_body(options: Mapping[str, Any]) -> dict[str, Any]:
    """Engine options as an OpenAI-protocol request body for vLLM and llama.cpp."""
    body = {name: value for name, value in options.items() if name in BY_NAME and BY_NAME[name].engine}
    if "repeat_penalty" in body:
        body["repetition_penalty"] = body["repeat_penalty"]  # vLLM's name; llama.cpp reads repeat_penalty
    return body
