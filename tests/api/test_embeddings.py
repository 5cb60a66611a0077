"""Embeddings on both protocols, served by the embedded engine with embeddings enabled."""

from __future__ import annotations

import math
from collections.abc import Callable

import httpx
import ollama
import openai
import pytest
from django.contrib.auth.models import AbstractUser

from accounts.models import UsageRecord
from models_admin.models import LLMModel

pytestmark = pytest.mark.django_db(transaction=True)

DIMENSIONS = 576  # SmolLM2-135M's embedding length


def _unit(vector: list[float]) -> bool:
    return math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, rel_tol=1e-3)


def test_native_embed_returns_one_normalised_vector_per_input(
    ollama_client: Callable[..., ollama.Client], alice: AbstractUser, alice_key: str, embedding_model: LLMModel
) -> None:
    result = ollama_client(alice_key).embed(model="smollm2-embed", input=["The sky is blue.", "Grass is green."])
    assert len(result.embeddings) == 2
    assert all(len(v) == DIMENSIONS and _unit(list(v)) for v in result.embeddings)
    assert result.embeddings[0] != result.embeddings[1]
    assert UsageRecord.objects.get(user=alice).prompt_tokens > 0


def test_native_embed_can_shorten_vectors(server: str, alice_key: str, embedding_model: LLMModel) -> None:
    response = httpx.post(
        f"{server}/api/embed",
        json={"model": "smollm2-embed", "input": "The sky is blue.", "dimensions": 64},
        headers={"Authorization": f"Bearer {alice_key}"},
        timeout=60,
    )
    (vector,) = response.json()["embeddings"]
    assert len(vector) == 64 and _unit(vector)


def test_legacy_embeddings_route(ollama_client: Callable[..., ollama.Client], alice_key: str, embedding_model: LLMModel) -> None:
    result = ollama_client(alice_key).embeddings(model="smollm2-embed", prompt="The sky is blue.")
    assert len(result.embedding) == DIMENSIONS


def test_openai_embeddings_in_float_and_base64(
    openai_client: Callable[..., openai.OpenAI], server: str, alice_key: str, embedding_model: LLMModel
) -> None:
    client = openai_client(alice_key)
    # The official client asks for base64 by default and decodes it.
    decoded = client.embeddings.create(model="smollm2-embed", input=["The sky is blue."])
    floats = client.embeddings.create(model="smollm2-embed", input="The sky is blue.", encoding_format="float")
    assert len(decoded.data[0].embedding) == DIMENSIONS
    assert decoded.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)
    assert floats.usage.prompt_tokens > 0
    raw = httpx.post(
        f"{server}/v1/embeddings",
        json={"model": "smollm2-embed", "input": "The sky is blue.", "encoding_format": "base64"},
        headers={"Authorization": f"Bearer {alice_key}"},
        timeout=60,
    ).json()
    assert isinstance(raw["data"][0]["embedding"], str)


def test_model_without_embeddings_is_refused_with_400(
    ollama_client: Callable[..., ollama.Client], openai_client: Callable[..., openai.OpenAI], alice_key: str, smollm: LLMModel
) -> None:
    with pytest.raises(ollama.ResponseError) as native:
        ollama_client(alice_key).embed(model="smollm2:135m", input="x")
    assert native.value.status_code == 400 and "embeddings" in native.value.error
    with pytest.raises(openai.BadRequestError):
        openai_client(alice_key).embeddings.create(model="smollm2:135m", input="x")


def test_empty_native_input_returns_no_vectors(ollama_client: Callable[..., ollama.Client], alice_key: str, embedding_model: LLMModel) -> None:
    assert ollama_client(alice_key).embed(model="smollm2-embed", input=[]).embeddings == []
