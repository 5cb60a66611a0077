from __future__ import annotations

import os
from pathlib import Path

import pytest

from models_admin.names import (
    InvalidDigest,
    InvalidModelName,
    ModelName,
    parse_model_name,
    safe_join,
    validate_digest,
)

HEX = "0123456789abcdef" * 4


def test_name_without_tag_means_latest() -> None:
    assert parse_model_name("llama3.2") == parse_model_name("llama3.2:latest")
    assert parse_model_name("llama3.2").full == "llama3.2:latest"


def test_names_compare_case_insensitively_but_display_keeps_case() -> None:
    parsed = parse_model_name("hf.co/Bartowski/Llama-3.2-1B-GGUF:Q4_K_M")
    assert parsed == ModelName(
        name="hf.co/bartowski/llama-3.2-1b-gguf",
        tag="q4_k_m",
        full="hf.co/bartowski/llama-3.2-1b-gguf:q4_k_m",
        display="hf.co/Bartowski/Llama-3.2-1B-GGUF:Q4_K_M",
    )
    assert parse_model_name("SmolLM2:135M").full == parse_model_name("smollm2:135m").full


@pytest.mark.parametrize("raw", ["library/llama3", "smollm2:135m", "qwen2.5-coder:7b-instruct-q4_K_M", "a_b:_x"])
def test_accepts_ollama_style_names(raw: str) -> None:
    expected = raw.lower() if ":" in raw else f"{raw}:latest"
    assert parse_model_name(raw).full == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("a" * 201, "longer than 200"),
        ("/etc/passwd", "must not start with '/'"),
        ("library/../secret", "'..'"),
        ("..", "'..'"),
        ("models\\llama", "backslash"),
        ("library//llama", "empty part"),
        (".hidden", "starting with a letter or digit"),
        ("-rf", "starting with a letter or digit"),
        ("llama 3", "whitespace"),
        ("llama3\n", "whitespace"),
        ("llama\x00", "NUL"),
        ("llama:", "empty tag"),
        ("llama:.x", "Tag"),
        ("llama:" + "t" * 81, "Tag"),
        ("host:5000/library/llama", "not valid"),
        ("c:/windows", "not valid"),
        ("llama;rm", "not valid"),
        ("llamä", "not valid"),
    ],
)
def test_rejects_unsafe_or_malformed_names(raw: str, reason: str) -> None:
    with pytest.raises(InvalidModelName, match=reason.replace("(", r"\(")):
        parse_model_name(raw)


def test_digest_accepts_colon_and_blob_path_forms() -> None:
    assert validate_digest(f"sha256:{HEX}") == f"sha256:{HEX}"
    assert validate_digest(f"sha256-{HEX}") == f"sha256:{HEX}"


@pytest.mark.parametrize(
    "raw",
    [HEX, f"sha256:{HEX.upper()}", f"sha256:{HEX[:-1]}", f"sha256:{HEX}0", f"md5:{HEX}", f"sha256:{HEX}\n", ""],
)
def test_digest_rejects_anything_else(raw: str) -> None:
    with pytest.raises(InvalidDigest):
        validate_digest(raw)


def test_safe_join_stays_inside_base(tmp_path: Path) -> None:
    assert safe_join(tmp_path, "blobs", f"sha256-{HEX}") == tmp_path.resolve() / "blobs" / f"sha256-{HEX}"


@pytest.mark.parametrize("parts", [("..", "x"), ("blobs/../../x",), ("/etc/passwd",)])
def test_safe_join_refuses_escapes(tmp_path: Path, parts: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="escapes"):
        safe_join(tmp_path / "models", *parts)


def test_safe_join_refuses_symlink_out_of_base(tmp_path: Path) -> None:
    base = tmp_path / "models"
    base.mkdir()
    os.symlink(tmp_path, base / "link")
    with pytest.raises(ValueError, match="escapes"):
        safe_join(base, "link", "secret")
