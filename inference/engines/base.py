"""The one engine interface that the browser chat and the API share."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict


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
    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    stop: list[str] = field(default_factory=list)

    def as_openai(self) -> dict[str, Any]:
        body: dict[str, Any] = {"max_tokens": self.max_tokens}
        for name in ("temperature", "top_p", "top_k", "min_p", "presence_penalty", "frequency_penalty", "seed"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        if self.repeat_penalty is not None:
            body["repetition_penalty"] = self.repeat_penalty  # vLLM's name
            body["repeat_penalty"] = self.repeat_penalty  # llama.cpp's name
        if self.stop:
            body["stop"] = self.stop
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
