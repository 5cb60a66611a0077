"""Validate a GGUF file's structure and read the metadata the model admin shows.

The parser streams the header only: it never memory-maps the file, skips the
vocabulary arrays without keeping them, and checks every length against the bytes
actually left in the file before reading, so a hostile or cut-short file costs a few
kilobytes of memory and ends in ``InvalidGGUF``, never in another exception.
Layout: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
"""

from __future__ import annotations

import io
import math
import os
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final, Union

from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType

GGUF_MAGIC: Final = b"GGUF"
SUPPORTED_VERSIONS: Final = (2, 3)
DEFAULT_ALIGNMENT: Final = 32

# Limits far above any published model but small enough that a hostile header cannot
# make us loop or allocate for long: the biggest real files have a few thousand
# tensors, under a hundred keys and a vocabulary of a few hundred thousand entries.
MAX_TENSORS: Final = 1 << 16
MAX_KV: Final = 1 << 16
MAX_KEY_LENGTH: Final = 1 << 16
MAX_TENSOR_NAME_LENGTH: Final = 1 << 10
MAX_STRING_LENGTH: Final = 16 << 20
# All metadata strings kept in memory together (chat templates are the big ones, a
# few hundred kilobytes at most); a file full of long strings must not fill the RAM.
MAX_KEPT_STRING_BYTES: Final = 64 << 20
MAX_SKIPPED_STRINGS: Final = 1 << 24
MAX_ARRAY_DEPTH: Final = 3
MAX_DIMS: Final = 4

# Arrays up to this length are kept (per-layer head counts, language lists); longer
# ones (vocabulary, merges, scores) are skipped.
KEPT_ARRAY_LENGTH: Final = 256
RAW_STRING_LENGTH: Final = 4096

_STRING: Final = 8
_ARRAY: Final = 9
_SCALARS: Final[dict[int, struct.Struct]] = {
    0: struct.Struct("<B"),
    1: struct.Struct("<b"),
    2: struct.Struct("<H"),
    3: struct.Struct("<h"),
    4: struct.Struct("<I"),
    5: struct.Struct("<i"),
    6: struct.Struct("<f"),
    7: struct.Struct("<?"),
    10: struct.Struct("<Q"),
    11: struct.Struct("<q"),
    12: struct.Struct("<d"),
}
_U32: Final = _SCALARS[4]
_U64: Final = _SCALARS[10]

# Encoder-only architectures llama.cpp runs for embeddings; decoder-based embedding
# models (e.g. Qwen3-Embedding) are recognised by their pooling_type key instead.
_EMBEDDING_ARCHITECTURES: Final = frozenset(
    {"bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "jina-bert-v3", "neo-bert", "t5encoder"}
)
# Tensor name prefixes of vision encoders/projectors (llama.cpp's mtmd naming).
_VISION_TENSOR_PREFIXES: Final = ("v.", "mm.")

MetaValue = Union[int, float, bool, str, list["MetaValue"]]


class InvalidGGUF(ValueError):
    """The file is not a usable GGUF model; the message says why, for a person."""


@dataclass(frozen=True)
class GGUFInfo:
    architecture: str
    name: str | None
    family: str
    parameter_count: int | None
    parameter_size: str | None
    quantization: str | None
    context_length: int | None
    embedding_length: int | None
    block_count: int | None
    head_count: int | None
    head_count_kv: int | None
    key_length: int | None
    value_length: int | None
    chat_template: str | None
    file_size: int
    tensor_count: int
    capabilities: list[str] = field(default_factory=list)
    # Scalar metadata and short arrays, JSON-safe, for a "details" view.
    raw: dict[str, MetaValue] = field(default_factory=dict)


class _EndOfFile(Exception):
    pass


class _Reader:
    """Sequential reads that refuse to go past the file size taken at open time."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self._stream = stream
        self.size = size
        self.pos = 0

    def remaining(self) -> int:
        return self.size - self.pos

    def take(self, n: int) -> bytes:
        if n > self.remaining():
            raise _EndOfFile
        data = self._stream.read(n)
        # The file may shrink while we read it (a download still being written).
        if len(data) != n:
            raise _EndOfFile
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        if n > self.remaining():
            raise _EndOfFile
        self._stream.seek(n, os.SEEK_CUR)
        self.pos += n

    def u32(self) -> int:
        value: int = _U32.unpack(self.take(4))[0]
        return value

    def u64(self) -> int:
        value: int = _U64.unpack(self.take(8))[0]
        return value

    def string(self, *, limit: int, what: str) -> str:
        length = self.u64()
        if length > limit:
            if length > self.remaining():
                raise _EndOfFile
            raise InvalidGGUF(f"GGUF {what} is {length} bytes long, over the limit of {limit}.")
        return self.take(length).decode("utf-8", errors="replace").replace("\x00", "")


class _Parser:
    def __init__(self, reader: _Reader) -> None:
        self.r = reader
        self.section = "header"
        self.skipped_strings = 0
        self.kept_string_bytes = 0

    def value(self, vtype: int, *, key: str, depth: int = 0) -> MetaValue | None:
        """Read one metadata value; return None for an array too long to keep."""
        scalar = _SCALARS.get(vtype)
        if scalar is not None:
            result: int | float | bool = scalar.unpack(self.r.take(scalar.size))[0]
            return result
        if vtype == _STRING:
            text = self.r.string(limit=MAX_STRING_LENGTH, what=f"string for {key!r}")
            self.kept_string_bytes += len(text)
            if self.kept_string_bytes > MAX_KEPT_STRING_BYTES:
                raise InvalidGGUF("GGUF metadata holds more text than this server accepts.")
            return text
        if vtype != _ARRAY:
            raise InvalidGGUF(f"GGUF metadata key {key!r} has unknown value type {vtype}.")
        if depth >= MAX_ARRAY_DEPTH:
            raise InvalidGGUF(f"GGUF metadata key {key!r} nests arrays too deeply.")

        etype, count = self.r.u32(), self.r.u64()
        element = _SCALARS.get(etype)
        # Every element takes at least this many bytes, so a count the rest of the
        # file cannot hold is a truncation, caught before any loop or allocation.
        min_size = element.size if element is not None else (8 if etype == _STRING else 12)
        if count * min_size > self.r.remaining():
            raise _EndOfFile
        if count <= KEPT_ARRAY_LENGTH:
            items = [self.value(etype, key=key, depth=depth + 1) for _ in range(count)]
            return [item for item in items if item is not None]
        if element is not None:
            self.r.skip(count * element.size)
            return None
        self.skipped_strings += count
        if self.skipped_strings > MAX_SKIPPED_STRINGS:
            raise InvalidGGUF("GGUF metadata holds more array entries than this server accepts.")
        for _ in range(count):
            if etype == _STRING:
                self.r.skip(self.r.u64())
            else:
                self.value(etype, key=key, depth=depth + 1)
        return None


def read_gguf_info(path: Path) -> GGUFInfo:
    """Validate ``path`` as a complete GGUF model file and return its metadata.

    Raises ``InvalidGGUF`` for anything wrong with the content; ``OSError`` (missing
    file, no permission) is left to the caller.
    """
    with path.open("rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        parser = _Parser(_Reader(stream, size))
        try:
            return _parse(parser)
        except _EndOfFile:
            raise InvalidGGUF(
                f"GGUF file is truncated: it ends at byte {size}, inside the {parser.section}."
            ) from None


class _Prefix(io.BytesIO):
    """The first bytes of a file; remembers whether the parser wanted more."""

    exhausted = False

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        if size is not None and size >= 0 and len(data) < size:
            self.exhausted = True
        return data


def gguf_info_from_prefix(data: bytes, *, file_size: int) -> GGUFInfo | None:
    """Parse a GGUF header from the file's first bytes; None when more bytes are needed.

    Uses the streaming parser on the prefix with the real file size, so the checks
    against the tensor data still hold; reads past the prefix come back short.
    """
    stream = _Prefix(data)
    parser = _Parser(_Reader(stream, file_size))
    try:
        return _parse(parser)
    except (_EndOfFile, InvalidGGUF):
        if stream.exhausted and len(data) < file_size:
            return None
        raise InvalidGGUF("Not a valid GGUF file: the header could not be read.") from None



def _parse(p: _Parser) -> GGUFInfo:
    r = p.r
    if r.size < 4 or r.take(4) != GGUF_MAGIC:
        raise InvalidGGUF("Not a GGUF file (bad magic).")
    version = r.u32()
    if version not in SUPPORTED_VERSIONS:
        if int.from_bytes(version.to_bytes(4, "little"), "big") in SUPPORTED_VERSIONS:
            raise InvalidGGUF("Big-endian GGUF files are not supported.")
        raise InvalidGGUF(f"Unsupported GGUF version {version} (supported: 2 and 3).")
    tensor_count, kv_count = r.u64(), r.u64()
    if tensor_count > MAX_TENSORS:
        raise InvalidGGUF(f"GGUF header claims {tensor_count} tensors; at most {MAX_TENSORS} are accepted.")
    if kv_count > MAX_KV:
        raise InvalidGGUF(f"GGUF header claims {kv_count} metadata keys; at most {MAX_KV} are accepted.")

    p.section = "metadata"
    meta: dict[str, MetaValue] = {}
    for _ in range(kv_count):
        key = r.string(limit=MAX_KEY_LENGTH, what="metadata key")
        if key in meta:
            raise InvalidGGUF(f"GGUF metadata key {key!r} appears twice.")
        value = p.value(r.u32(), key=key)
        if value is not None:
            meta[key] = value

    alignment = meta.get("general.alignment", DEFAULT_ALIGNMENT)
    if type(alignment) is not int or alignment <= 0 or alignment & (alignment - 1):
        raise InvalidGGUF(f"GGUF general.alignment {alignment!r} is not a power of two.")

    p.section = "tensor list"
    # Smallest tensor record: name length, n_dims, type, offset.
    if tensor_count * 24 > r.remaining():
        raise InvalidGGUF(
            f"GGUF file is truncated: header says {tensor_count} tensors "
            f"but the file ends at byte {r.size}."
        )
    data_needed = 0
    parameter_count = 0
    elements_by_type: Counter[GGMLQuantizationType] = Counter()
    has_vision_tensors = False
    for _ in range(tensor_count):
        try:
            name = r.string(limit=MAX_TENSOR_NAME_LENGTH, what="tensor name")
            n_dims = r.u32()
            if n_dims > MAX_DIMS:
                raise InvalidGGUF(f"GGUF tensor {name!r} has {n_dims} dimensions; at most {MAX_DIMS} are allowed.")
            dims = [r.u64() for _ in range(n_dims)]
            raw_type, offset = r.u32(), r.u64()
        except _EndOfFile:
            raise InvalidGGUF(
                f"GGUF file is truncated: header says {tensor_count} tensors "
                f"but the file ends at byte {r.size}."
            ) from None
        try:
            qtype = GGMLQuantizationType(raw_type)
            block_size, type_size = GGML_QUANT_SIZES[qtype]
        except (ValueError, KeyError):
            raise InvalidGGUF(f"GGUF tensor {name!r} uses unknown tensor type {raw_type}.") from None
        if dims and dims[0] % block_size:
            raise InvalidGGUF(
                f"GGUF tensor {name!r} has a first dimension of {dims[0]}, "
                f"not a multiple of the {qtype.name} block size {block_size}."
            )
        if offset % alignment:
            raise InvalidGGUF(f"GGUF tensor {name!r} starts at an unaligned offset {offset}.")
        n_elements = math.prod(dims)
        data_needed = max(data_needed, offset + n_elements // block_size * type_size)
        parameter_count += n_elements
        elements_by_type[qtype] += n_elements
        has_vision_tensors = has_vision_tensors or name.startswith(_VISION_TENSOR_PREFIXES)

    data_start = -(-r.pos // alignment) * alignment
    if tensor_count and data_start + data_needed > r.size:
        raise InvalidGGUF(
            f"GGUF file is truncated: its tensor data ends at byte {data_start + data_needed} "
            f"but the file ends at byte {r.size}."
        )
    return _info(
        meta,
        file_size=r.size,
        tensor_count=tensor_count,
        parameter_count=parameter_count if tensor_count else None,
        elements_by_type=elements_by_type,
        has_vision_tensors=has_vision_tensors,
    )


def _info(
    meta: dict[str, MetaValue],
    *,
    file_size: int,
    tensor_count: int,
    parameter_count: int | None,
    elements_by_type: Counter[GGMLQuantizationType],
    has_vision_tensors: bool,
) -> GGUFInfo:
    arch = meta.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise InvalidGGUF("GGUF file has no general.architecture.")

    def number(key: str) -> int | None:
        value = meta.get(f"{arch}.{key}")
        # Some architectures store per-layer values (e.g. head counts); the largest
        # one is what sizing needs.
        if isinstance(value, list):
            value = max((v for v in value if type(v) is int), default=None)
        return value if type(value) is int else None

    name = meta.get("general.name")
    template = meta.get("tokenizer.chat_template")
    chat_template = template if isinstance(template, str) else None
    size_label = meta.get("general.size_label")

    is_embedding = arch in _EMBEDDING_ARCHITECTURES or f"{arch}.pooling_type" in meta
    is_projector = arch == "clip"
    capabilities = []
    if not is_embedding and not is_projector:
        capabilities.append("completion")
    if is_embedding:
        capabilities.append("embedding")
    if is_projector or has_vision_tensors or any(".vision." in key for key in meta):
        capabilities.append("vision")
    if chat_template is not None and "tools" in chat_template:
        capabilities.append("tools")

    return GGUFInfo(
        architecture=arch,
        name=name if isinstance(name, str) else None,
        family=arch,
        parameter_count=parameter_count,
        parameter_size=(
            format_parameter_count(parameter_count)
            if parameter_count
            else size_label if isinstance(size_label, str) else None
        ),
        quantization=_quantization(meta.get("general.file_type"), elements_by_type),
        context_length=number("context_length"),
        embedding_length=number("embedding_length"),
        block_count=number("block_count"),
        head_count=number("attention.head_count"),
        head_count_kv=number("attention.head_count_kv"),
        key_length=number("attention.key_length"),
        value_length=number("attention.value_length"),
        chat_template=chat_template,
        file_size=file_size,
        tensor_count=tensor_count,
        capabilities=capabilities,
        raw={key: value for key, value in meta.items() if _keep_raw(key, value)},
    )


def _quantization(
    file_type: MetaValue | None, elements_by_type: Counter[GGMLQuantizationType]
) -> str | None:
    # Writers that guessed the file type add the GUESSED flag; trust the tensors then.
    if type(file_type) is int and file_type < LlamaFileType.GUESSED:
        try:
            return LlamaFileType(file_type).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            pass  # a file type newer than the gguf package: fall back to the tensors
    if not elements_by_type:
        return None
    # As Ollama does without a file type: name the type holding the most weights.
    return elements_by_type.most_common(1)[0][0].name


def _keep_raw(key: str, value: MetaValue) -> bool:
    if key == "tokenizer.chat_template":
        return False  # exposed as GGUFInfo.chat_template
    if isinstance(value, float):
        return math.isfinite(value)  # NaN and infinities are not valid JSON
    if isinstance(value, str):
        return len(value) <= RAW_STRING_LENGTH
    if isinstance(value, list):
        return all(_keep_raw(key, item) and not isinstance(item, list) for item in value)
    return True


def format_parameter_count(count: int) -> str:
    """Format like Ollama's model cards: 135M, 7.2B, 70B."""
    for divisor, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if count >= divisor:
            scaled = count / divisor
            text = f"{scaled:.1f}" if scaled < 10 else f"{scaled:.0f}"
            return f"{text.removesuffix('.0')}{suffix}"
    return str(count)
