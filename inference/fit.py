"""Estimate whether a model fits in the memory a server has, before pulling it.

The estimate follows llama.cpp's layout: the weights, an f16 KV cache of
``2 (K and V) x layers x context x parallel sequences x kv_heads x head_dim`` elements,
and a compute-buffer allowance. It is deliberately simple and errs on the high side
(sliding-window attention and quantised KV caches need less).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from inference.gguf_info import GGUFInfo

GiB: Final = 1 << 30
MiB: Final = 1 << 20
# Compute buffers grow with the model; 5 % of the weights plus a fixed 256 MiB covers
# llama.cpp's scratch buffers for the models we measured at usual batch sizes.
OVERHEAD_FRACTION: Final = 0.05
OVERHEAD_FIXED: Final = 256 * MiB
# Below this a chat model is of little use, so "fits with a shorter context" stops here.
MIN_USEFUL_CONTEXT: Final = 2048

FitStatus = Literal["fits", "fits_reduced", "does_not_fit"]


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int
    kv_cache: int
    overhead: int
    total: int


@dataclass(frozen=True)
class ModelShape:
    """The numbers the estimate needs, from a GGUF header or a Hugging Face config."""

    weights_bytes: int
    block_count: int
    embedding_length: int
    head_count: int
    head_count_kv: int | None
    context_length: int
    key_length: int | None = None
    value_length: int | None = None

    @classmethod
    def from_gguf(cls, info: GGUFInfo, *, weights_bytes: int | None = None) -> ModelShape:
        """Read the shape from a GGUF header; ``weights_bytes`` defaults to the file size.

        Files without attention metadata (vision projectors) get a KV cache of zero.
        """
        return cls(
            weights_bytes=info.file_size if weights_bytes is None else weights_bytes,
            block_count=info.block_count or 0,
            embedding_length=info.embedding_length or 0,
            head_count=info.head_count or 0,
            head_count_kv=info.head_count_kv,
            context_length=info.context_length or 0,
            key_length=info.key_length,
            value_length=info.value_length,
        )

    @classmethod
    def from_hf_config(cls, config: Mapping[str, Any], *, weights_bytes: int) -> ModelShape:
        """Read the shape from a transformers ``config.json``.

        ``torch_dtype`` is not used: the weights are sized by ``weights_bytes`` (the
        chosen GGUF file) and llama.cpp keeps its KV cache in f16 whatever the dtype.
        """
        # Multimodal configs (Gemma 3, LLaVA, ...) nest the language model's numbers.
        text = config.get("text_config")
        source = text if isinstance(text, Mapping) and "num_hidden_layers" not in config else config

        def number(key: str) -> int | None:
            value = source.get(key)
            return value if type(value) is int and value > 0 else None

        layers, hidden, heads = (
            number("num_hidden_layers"),
            number("hidden_size"),
            number("num_attention_heads"),
        )
        context = number("max_position_embeddings")
        if layers is None or hidden is None or heads is None or context is None:
            raise ValueError(
                "The model's config.json lacks num_hidden_layers, hidden_size, "
                "num_attention_heads or max_position_embeddings."
            )
        head_dim = number("head_dim")
        return cls(
            weights_bytes=weights_bytes,
            block_count=layers,
            embedding_length=hidden,
            head_count=heads,
            head_count_kv=number("num_key_value_heads"),
            context_length=context,
            key_length=head_dim,
            value_length=head_dim,
        )

    def estimate(self, *, context_length: int, parallel: int = 1, kv_bytes_per_element: float = 2.0) -> MemoryEstimate:
        """Memory for this model loaded with ``parallel`` sequences of ``context_length`` tokens."""
        return estimate_memory(
            weights_bytes=self.weights_bytes,
            block_count=self.block_count,
            embedding_length=self.embedding_length,
            head_count=self.head_count,
            head_count_kv=self.head_count_kv,
            key_length=self.key_length,
            value_length=self.value_length,
            context_length=context_length,
            parallel=parallel,
            kv_bytes_per_element=kv_bytes_per_element,
        )


@dataclass(frozen=True)
class FitVerdict:
    status: FitStatus
    context_length: int
    # Parallel sequences that fit at context_length (0 when nothing fits).
    max_parallel: int
    estimate: MemoryEstimate
    available_bytes: int
    message: str


def default_overhead(weights_bytes: int) -> int:
    return int(weights_bytes * OVERHEAD_FRACTION) + OVERHEAD_FIXED


def kv_bytes_per_token(
    *,
    block_count: int,
    embedding_length: int,
    head_count: int,
    head_count_kv: int | None,
    key_length: int | None = None,
    value_length: int | None = None,
    kv_bytes_per_element: float = 2.0,
) -> float:
    """Return the KV-cache bytes one token of one sequence takes."""
    if head_count <= 0:
        return 0.0
    head_dim = embedding_length / head_count
    kv_heads = head_count if head_count_kv is None else head_count_kv
    per_layer = kv_heads * ((key_length or head_dim) + (value_length or head_dim))
    return block_count * per_layer * kv_bytes_per_element


def estimate_memory(
    *,
    weights_bytes: int,
    block_count: int,
    embedding_length: int,
    head_count: int,
    head_count_kv: int | None,
    context_length: int,
    parallel: int = 1,
    key_length: int | None = None,
    value_length: int | None = None,
    kv_bytes_per_element: float = 2.0,
    overhead_bytes: int | None = None,
) -> MemoryEstimate:
    """Estimate the memory to serve ``parallel`` sequences of ``context_length`` tokens.

    ``head_count_kv`` None means plain multi-head attention (as many KV heads as heads);
    ``overhead_bytes`` None means ``default_overhead(weights_bytes)``.
    """
    per_token = kv_bytes_per_token(
        block_count=block_count,
        embedding_length=embedding_length,
        head_count=head_count,
        head_count_kv=head_count_kv,
        key_length=key_length,
        value_length=value_length,
        kv_bytes_per_element=kv_bytes_per_element,
    )
    kv_cache = int(per_token * context_length * parallel)
    overhead = default_overhead(weights_bytes) if overhead_bytes is None else overhead_bytes
    return MemoryEstimate(
        weights=weights_bytes,
        kv_cache=kv_cache,
        overhead=overhead,
        total=weights_bytes + kv_cache + overhead,
    )


def fit_verdict(
    *,
    shape: ModelShape,
    available_bytes: int,
    context_length: int | None = None,
    parallel: int = 1,
    kv_bytes_per_element: float = 2.0,
) -> FitVerdict:
    """Say whether ``shape`` serves ``parallel`` chats of ``context_length`` tokens in memory.

    ``context_length`` defaults to the model's own. When that does not fit, the verdict
    is ``fits_reduced`` with fewer parallel chats or, failing that, the longest context
    (at least ``MIN_USEFUL_CONTEXT``) that fits one chat.
    """
    context = context_length or shape.context_length
    per_token = kv_bytes_per_token(
        block_count=shape.block_count,
        embedding_length=shape.embedding_length,
        head_count=shape.head_count,
        head_count_kv=shape.head_count_kv,
        key_length=shape.key_length,
        value_length=shape.value_length,
        kv_bytes_per_element=kv_bytes_per_element,
    )
    fixed = shape.weights_bytes + default_overhead(shape.weights_bytes)
    room_for_kv = available_bytes - fixed

    def estimate(ctx: int, par: int) -> MemoryEstimate:
        return shape.estimate(context_length=ctx, parallel=par, kv_bytes_per_element=kv_bytes_per_element)

    def max_parallel_at(ctx: int) -> int:
        if room_for_kv < 0:
            return 0
        per_sequence = estimate(ctx, 1).kv_cache
        # A model without a KV cache (projector, tiny context) is not limited by memory
        # per chat; report the request itself rather than an infinite number.
        return room_for_kv // per_sequence if per_sequence else max(parallel, 1)

    have = format_bytes(available_bytes)
    fitting = max_parallel_at(context)
    if fitting >= parallel:
        est = estimate(context, parallel)
        return FitVerdict(
            status="fits",
            context_length=context,
            max_parallel=fitting,
            estimate=est,
            available_bytes=available_bytes,
            message=ngettext(
                "Fits: %(size)s of %(have)s; up to %(count)d chat at %(context)d tokens.",
                "Fits: %(size)s of %(have)s; up to %(count)d parallel chats at %(context)d tokens.",
                fitting,
            )
            % {"size": format_bytes(est.total), "have": have, "count": fitting, "context": context},
        )
    if fitting >= 1:
        est = estimate(context, fitting)
        return FitVerdict(
            status="fits_reduced",
            context_length=context,
            max_parallel=fitting,
            estimate=est,
            available_bytes=available_bytes,
            message=_(
                "Fits with fewer parallel chats: %(count)d instead of %(parallel)d "
                "at %(context)d tokens (%(size)s of %(have)s)."
            )
            % {"count": fitting, "parallel": parallel, "context": context,
               "size": format_bytes(est.total), "have": have},
        )

    floor = min(MIN_USEFUL_CONTEXT, context)
    # Round down to a multiple of 256 tokens, the granularity llama.cpp pads the cache to.
    reduced = int(room_for_kv / per_token) // 256 * 256 if per_token and room_for_kv > 0 else 0
    if reduced >= floor:
        est = estimate(reduced, 1)
        return FitVerdict(
            status="fits_reduced",
            context_length=reduced,
            max_parallel=1,
            estimate=est,
            available_bytes=available_bytes,
            message=_(
                "Fits with a shorter context: %(reduced)d tokens instead of %(context)d, "
                "one chat at a time (%(size)s of %(have)s)."
            )
            % {"reduced": reduced, "context": context, "size": format_bytes(est.total), "have": have},
        )
    # Report the least it would take: one chat at the shortest useful context.
    est = estimate(floor, 1)
    return FitVerdict(
        status="does_not_fit",
        context_length=floor,
        max_parallel=0,
        estimate=est,
        available_bytes=available_bytes,
        message=_("Does not fit: needs at least %(size)s, %(have)s available.")
        % {"size": format_bytes(est.total), "have": have},
    )


def format_bytes(size: int) -> str:
    """Format a byte count for people: 512 MiB, 4.1 GiB, 8 GiB."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    value, index = float(size), 0
    while abs(value) >= 1024 and index < len(units) - 1:
        value /= 1024
        index += 1
    # One decimal below 100, none where it would be ".0"; the separator follows the language.
    places = 0 if index == 0 or abs(value) >= 100 or round(value, 1) == round(value) else 1
    return f"{number_format(round(value, places), decimal_pos=places)} {units[index]}"
