"""Request bodies of both protocols, validated strictly (a string where a number belongs is a 400).

Unknown fields are ignored: clients send many that do not apply here (``format``, ``tools``, ``logprobs``...). Fields that are accepted but not acted on are listed
on each schema.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from inference import parameters
from inference.engines import parse_keep_alive


class _Schema(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


# ---- Ollama ---------------------------------------------------------------------------------


def _ollama_options(value: dict[str, Any]) -> dict[str, Any]:
    """Ollama's ``options`` in engine names, checked against the one parameter table.
    Unknown options and ``num_ctx`` (the context is the administrator's choice) are ignored."""
    try:
        return parameters.from_ollama(value)
    except parameters.ParameterError as exc:
        raise ValueError(f"options.{exc.field} {exc.problem}") from None


class _OllamaSampling(_Schema):
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("options")
    @classmethod
    def _options(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _ollama_options(value)

    @property
    def sampling(self) -> dict[str, Any]:
        return self.options


class OllamaMessage(_Schema):
    """Accepted, not acted on: ``tool_calls``, ``tool_name``, ``thinking``."""

    role: str
    content: str | None = ""
    images: list[str] | None = None


class _OllamaNamed(_Schema):
    """Routes that name a model in ``model``, or in the deprecated ``name``."""

    model: str = ""
    name: str = ""

    @model_validator(mode="after")
    def _one_name(self) -> _OllamaNamed:
        if not (self.model or self.name):
            raise ValueError("model is required")
        return self

    @property
    def target(self) -> str:
        return self.model or self.name


class _KeepAlive(_Schema):
    """Ollama's ``keep_alive``: seconds, or a duration such as ``"5m"``; negative keeps the model loaded."""

    keep_alive: str | int | float | None = None

    @field_validator("keep_alive")
    @classmethod
    def _duration(cls, value: str | int | float | None) -> str | int | float | None:
        parse_keep_alive(value)  # ValueError: a 400 naming the field
        return value

    @property
    def keep_alive_seconds(self) -> float | None:
        return parse_keep_alive(self.keep_alive)


class OllamaChatRequest(_KeepAlive, _OllamaSampling):
    """Accepted, not acted on: ``format``, ``tools``, ``think``."""

    model: str
    messages: list[OllamaMessage] = Field(default_factory=list)
    stream: bool = True


class OllamaGenerateRequest(_KeepAlive, _OllamaSampling):
    """Accepted, not acted on: ``suffix``, ``template``, ``context``, ``format``, ``think``."""

    model: str
    prompt: str = ""
    system: str | None = None
    raw: bool = False
    images: list[str] | None = None
    stream: bool = True


class OllamaEmbedRequest(_KeepAlive):
    """Accepted, not acted on: ``truncate``, ``options``."""

    model: str
    input: str | list[str] | None = None
    dimensions: int | None = Field(default=None, gt=0)


class OllamaEmbeddingsRequest(_Schema):
    model: str
    prompt: str = ""


class OllamaShowRequest(_OllamaNamed):
    verbose: bool = False


class OllamaDeleteRequest(_OllamaNamed):
    pass


class OllamaPullRequest(_OllamaNamed):
    """Accepted, not acted on: ``insecure``."""

    stream: bool = True


class OllamaCopyRequest(_Schema):
    source: str = Field(min_length=1)
    destination: str = Field(min_length=1)


class OllamaCreateRequest(_OllamaNamed):
    """Custom models from a base (``from``) with a system prompt, template and parameters.
    Building from uploaded files, adapters or quantizing is not offered through the API."""

    from_: str = Field(default="", alias="from")
    modelfile: str = ""
    system: str = ""
    template: str = ""
    parameters: dict[str, Any] | None = None
    stream: bool = True
    quantize: str | None = None
    files: dict[str, str] | None = None
    adapters: dict[str, str] | None = None

    @model_validator(mode="after")
    def _nothing_unsupported(self) -> OllamaCreateRequest:
        for field in ("quantize", "files", "adapters"):
            if getattr(self, field):
                raise ValueError(f"'{field}' is not supported here; create models from an existing one with 'from'")
        return self


# ---- OpenAI ---------------------------------------------------------------------------------


class ImageUrl(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    url: str


class ContentPart(BaseModel):
    """One part of a message's content: text, an image, or a kind that is dropped (audio, file)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    type: str
    text: str | None = None
    image_url: ImageUrl | str | None = None


class OpenAIMessage(_Schema):
    """Accepted, not acted on: ``tool_calls``, ``tool_call_id``, ``reasoning_content``, ``name``."""

    role: str
    content: str | list[ContentPart] | None = None


class StreamOptions(_Schema):
    include_usage: bool = False


class _OpenAISampling(_Schema):
    """The sampling fields (``max_tokens``, ``temperature``, ``stop``, ... and the llama.cpp /
    vLLM extensions ``top_k``, ``min_p``, ``repeat_penalty``) are not declared one by one:
    they are read from the body by the one parameter table into ``sampling``."""

    model: str
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    n: int | None = None
    sampling: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _sampling(cls, data: Any) -> Any:
        if isinstance(data, dict):
            try:
                data = {**data, "sampling": parameters.from_openai(data)}
            except parameters.ParameterError as exc:
                raise ValueError(f"{exc.field} {exc.problem}") from None
        return data

    @model_validator(mode="after")
    def _one_choice(self) -> _OpenAISampling:
        if self.n not in (None, 1):
            raise ValueError("only n=1 is supported")
        return self

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class OpenAIChatRequest(_OpenAISampling):
    """Accepted, not acted on: ``tools``, ``tool_choice``, ``response_format``, ``logprobs``, ``user``."""

    messages: list[OpenAIMessage] = Field(min_length=1)


class OpenAICompletionRequest(_OpenAISampling):
    """Accepted, not acted on: ``suffix``, ``echo``, ``logprobs``, ``best_of``, ``user``."""

    prompt: str | list[str]

    @model_validator(mode="after")
    def _one_prompt(self) -> OpenAICompletionRequest:
        if isinstance(self.prompt, list) and len(self.prompt) != 1:
            raise ValueError("only one prompt per request is supported")
        return self

    @property
    def prompt_text(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]


class OpenAIEmbeddingRequest(_Schema):
    """Accepted, not acted on: ``user``. Token-array inputs are refused."""

    model: str
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, gt=0)

    @property
    def inputs(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)
