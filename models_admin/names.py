"""Validate Ollama-style model names, blob digests and paths built from them.

Everything here guards values that end up in file paths or URLs, so it rejects
rather than repairs: a name that needs fixing is shown back to the person who typed it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

MAX_NAME_LENGTH: Final = 200
DEFAULT_TAG: Final = "latest"

# Ollama's own rules: a segment starts with a letter or digit (so never "." or ".."),
# a tag may also start with "_" and is at most 80 characters.
_SEGMENT_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_TAG_RE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,79}")
_DIGEST_RE: Final = re.compile(r"sha256[:-]([0-9a-f]{64})")


class InvalidModelName(ValueError):
    """The text is not a usable model name; the message says why."""


class InvalidDigest(ValueError):
    """The text is not a sha256 digest in Ollama's form."""


@dataclass(frozen=True)
class ModelName:
    """A parsed model name.

    ``name``, ``tag`` and ``full`` are lower-cased so they can serve as a unique key
    (Ollama treats names case-insensitively); ``display`` keeps the case as typed,
    which is what to show and what to pass on to Hugging Face.
    """

    name: str
    tag: str
    full: str
    display: str

    def __str__(self) -> str:
        return self.full


def parse_model_name(raw: str) -> ModelName:
    """Parse ``[namespace/...]model[:tag]``, defaulting the tag to ``latest``."""
    if not raw:
        raise InvalidModelName("Model name is empty.")
    if len(raw) > MAX_NAME_LENGTH:
        raise InvalidModelName(f"Model name is longer than {MAX_NAME_LENGTH} characters.")
    if "\x00" in raw:
        raise InvalidModelName("Model name contains a NUL character.")
    if any(ch.isspace() for ch in raw):
        raise InvalidModelName(f"Model name {raw!r} contains whitespace.")
    if "\\" in raw:
        raise InvalidModelName(f"Model name {raw!r} contains a backslash.")
    if raw.startswith("/"):
        raise InvalidModelName(f"Model name {raw!r} must not start with '/'.")

    # Only a colon after the last "/" separates the tag; any other colon is caught
    # below as a character segments may not contain.
    base, sep, tag = raw.rpartition(":")
    if not sep or "/" in tag:
        base, tag = raw, DEFAULT_TAG
    if not tag:
        raise InvalidModelName(f"Model name {raw!r} has an empty tag after ':'.")
    if not _TAG_RE.fullmatch(tag):
        raise InvalidModelName(
            f"Tag {tag!r} is not valid: use at most 80 letters, digits, '.', '_' or '-', "
            "not starting with '.' or '-'."
        )

    for segment in base.split("/"):
        if not segment:
            raise InvalidModelName(f"Model name {raw!r} has an empty part between '/'.")
        if not _SEGMENT_RE.fullmatch(segment):
            raise InvalidModelName(
                f"Part {segment!r} of model name {raw!r} is not valid: use letters, digits, "
                "'.', '_' or '-', starting with a letter or digit."
            )

    name, tag_key = base.lower(), tag.lower()
    return ModelName(name=name, tag=tag_key, full=f"{name}:{tag_key}", display=f"{base}:{tag}")


def validate_digest(raw: str) -> str:
    """Return ``sha256:<hex>`` for a digest given as ``sha256:<hex>`` or ``sha256-<hex>``."""
    match = _DIGEST_RE.fullmatch(raw)
    if match is None:
        raise InvalidDigest(
            f"Digest {raw[:80]!r} is not valid: expected 'sha256:' and 64 lower-case hex digits."
        )
    return f"sha256:{match.group(1)}"


def safe_join(base: Path, *parts: str) -> Path:
    """Join ``parts`` onto ``base`` and refuse any result that resolves outside ``base``."""
    root = base.resolve()
    # resolve() follows symlinks, so a link inside base that points elsewhere is refused too.
    candidate = root.joinpath(*parts).resolve()
    if not candidate.is_relative_to(root):
        raise ValueError(f"Path {'/'.join(parts)!r} escapes {root}.")
    return candidate
