"""The one engine interface that the browser chat and the API share."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from ..parameters import engine_body


class EngineError(Exception):
    """An engine failure with a message a person can read.

    ``permanent`` failures (unknown model, bad request) will fail again if retried;
    the others (engine down, connection lost) may succeed once the engine is back.
    """

    def __init__(self, message: str, *, permanent: bool = False, status: int = 503) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.status = status


class ChatMessage(TypedDict, total=False):
    role: str
    content: Any  # str, or OpenAI content parts (text / image_url)
    name: str


@dataclass(frozen=True)
class Endpoint:
    url: str
    api_key: str = ""


@dataclass(frozen=True)
class ModelSpec:
    """What an engine needs to know about a model; built from the registry, Django-free."""

    key: str  # "name:tag", unique
    backend: str
    upstream: str  # the model name sent to the engine
    context_length: int
    path: str = ""  # GGUF file for the embedded engine
    embedding: bool = False
    chat_template: str = ""
    endpoints: tuple[Endpoint, ...] = ()
    defaults: tuple[tuple[str, Any], ...] = ()  # sampling defaults from the model's parameters


@dataclass
class GenerationOptions:
    """One request's options: the answer's token cap and sampling options in the engine's
    names (``inference.parameters``), already validated and merged with the model's defaults."""

    max_tokens: int
    sampling: dict[str, Any] = field(default_factory=dict)

    def __init__(self, max_tokens: int, sampling: dict[str, Any] | None = None, **named: Any) -> None:
        # ``GenerationOptions(max_tokens=16, temperature=0)`` reads better in engine-level code.
        self.max_tokens = max_tokens
        self.sampling = {**(sampling or {}), **named}

    def as_openai(self) -> dict[str, Any]:
        body = engine_body(self.sampling)
        body["max_tokens"] = self.max_tokens
        return body


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class Final:
    finish_reason: Literal["stop", "length"]
    prompt_tokens: int
    completion_tokens: int
    prompt_seconds: float = 0.0
    generation_seconds: float = 0.0


StreamEvent = Delta | Final


@dataclass(frozen=True)
class Embeddings:
    vectors: list[list[float]]
    prompt_tokens: int


class Engine(abc.ABC):
    """A backend that runs models. Cancelling means closing the stream (``aclose``)."""

    name: str

    @abc.abstractmethod
    def stream_chat(
        self, spec: ModelSpec, messages: Sequence[ChatMessage], options: GenerationOptions
    ) -> AsyncIterator[StreamEvent]:
        """Yield deltas then one Final. Closing the iterator cancels the engine request."""

    @abc.abstractmethod
    def stream_completion(self, spec: ModelSpec, prompt: str, options: GenerationOptions) -> AsyncIterator[StreamEvent]:
        """Raw completion of ``prompt`` without the chat template."""

    @abc.abstractmethod
    async def count_tokens(self, spec: ModelSpec, text: str) -> int: ...

    @abc.abstractmethod
    async def embed(self, spec: ModelSpec, inputs: Sequence[str]) -> Embeddings: ...

    @abc.abstractmethod
    async def health(self, spec: ModelSpec) -> bool: ...
