"""What a pull source names, and what can be learned about it before downloading it.

A source is what an admin types (or the API receives) to pull a model:

- ``hf.co/<org>/<repo>:<quant>``: the GGUF file of that quantization in a Hugging Face repo
  (through ``HF_ENDPOINT``); ``hf.co/<org>/<repo>``: the repo's safetensors for vLLM, or its
  default GGUF when it has no safetensors;
- ``https://host/path/model.gguf``: a GGUF file at a URL;
- ``/path/in/import/folder.gguf`` or ``folder.gguf``: a file under ``MODEL_IMPORT_DIR``.

``parse_source`` only parses and validates (no network); ``plan_files`` and the estimates
talk to the source, always through ``fetch``'s address checks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings
from django.utils.translation import gettext as _

from inference.gguf_info import GGUF_MAGIC, gguf_info_from_prefix

from . import fetch
from .fetch import DownloadError, UnsafeURL, hf_file_url, hf_list_files, parse_hf_name, pick_gguf_file
from inference.fit import FitVerdict, ModelShape, fit_verdict, format_bytes
from inference.gguf_info import GGUFInfo, InvalidGGUF, read_gguf_info
from .models import Backend, PullKind
from .names import InvalidModelName, parse_model_name, safe_join

HEADER_FIRST_READ = 1 << 20
# A GGUF header holds the vocabulary: ~10 MiB for 256k-token vocabularies. Beyond this a
# file is not worth reading for an estimate.
HEADER_MAX_READ = 64 << 20
CONFIG_MAX_BYTES = 4 << 20

# The files vLLM needs from a transformers repository (weights, config, tokenizer).
_VLLM_FILE_RE = re.compile(
    r"(config\.json|generation_config\.json|tokenizer\.json|tokenizer_config\.json|tokenizer\.model"
    r"|special_tokens_map\.json|vocab\.json|vocab\.txt|merges\.txt|added_tokens\.json|chat_template\.jinja"
    r"|chat_template\.json|preprocessor_config\.json|processor_config\.json|model\.safetensors\.index\.json"
    r"|[A-Za-z0-9._-]+\.safetensors)"
)
_NAME_CLEAN_RE = re.compile(r"[^a-z0-9._-]+")


class SourceError(ValueError):
    """The source cannot be pulled; the message says why, for a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Source:
    kind: str  # a PullKind; HF_SAFETENSORS may turn into HF_GGUF once the repo is listed
    text: str
    key: str  # canonical: one active pull per key
    model_name: str  # "name:tag" the model is registered under
    url: str = ""
    path: Path | None = None
    repo_id: str = ""
    quant: str | None = None

    @property
    def is_hf(self) -> bool:
        return self.kind in (PullKind.HF_GGUF, PullKind.HF_SAFETENSORS)


@dataclass(frozen=True)
class RemoteFile:
    url: str
    name: str  # file name inside the model directory (safetensors) or "model.gguf"
    size: int | None


@dataclass(frozen=True)
class Plan:
    kind: str
    files: list[RemoteFile] = field(default_factory=list)

    @property
    def total_bytes(self) -> int | None:
        sizes = [f.size for f in self.files]
        return None if any(s is None for s in sizes) else sum(s for s in sizes if s is not None)


def _name_from_filename(filename: str) -> str:
    stem = filename.rsplit("/", 1)[-1]
    stem = re.sub(r"\.gguf$", "", stem, flags=re.IGNORECASE)
    cleaned = _NAME_CLEAN_RE.sub("-", stem.lower()).strip("-._")
    return cleaned[:100] or "model"


def _model_name(raw: str) -> str:
    try:
        return parse_model_name(raw).full
    except InvalidModelName as exc:
        raise SourceError(str(exc)) from None


def import_path(text: str) -> Path:
    """The file ``text`` names inside ``MODEL_IMPORT_DIR`` (absolute or relative), or SourceError."""
    base = Path(settings.MODEL_IMPORT_DIR)
    if "\x00" in text:
        raise SourceError("The path contains a NUL character.")
    try:
        path = safe_join(base, text)
    except ValueError:
        raise SourceError(
            f"{text[:200]!r} is outside the import folder {base}; only files there can be imported."
        ) from None
    if not path.is_file():
        raise SourceError(f"There is no file {text[:200]!r} in the import folder {base}.")
    return path


def parse_source(text: str, *, model_name: str = "") -> Source:
    """Validate a pull source and the name its model gets (``model_name`` overrides it)."""
    text = text.strip()
    if not text:
        raise SourceError("Type what to pull: hf.co/<org>/<repo>:<quantization>, a URL of a GGUF file, or a file name.")
    if len(text) > 1000:
        raise SourceError("The source is longer than 1000 characters.")
    lowered = text.lower()
    if lowered.startswith(("http://", "https://")):
        try:
            url = httpx.URL(text)
        except httpx.InvalidURL as exc:
            raise SourceError(f"{text[:200]!r} is not a valid URL: {exc}.") from None
        filename = url.path.rstrip("/").rsplit("/", 1)[-1]
        return Source(
            kind=PullKind.URL,
            text=text,
            key=f"url:{url}",
            model_name=_model_name(model_name or _name_from_filename(filename)),
            url=str(url),
        )
    if lowered.startswith(("hf.co/", "huggingface.co/")):
        try:
            repo_id, quant = parse_hf_name(text)
        except InvalidModelName as exc:
            raise SourceError(str(exc)) from None
        tag = quant or "latest"
        return Source(
            kind=PullKind.HF_GGUF if quant else PullKind.HF_SAFETENSORS,
            text=text,
            key=f"hf:{repo_id.lower()}:{(quant or '').lower()}",
            model_name=_model_name(model_name or f"hf.co/{repo_id}:{tag}"),
            repo_id=repo_id,
            quant=quant,
        )
    if text.startswith("/") or lowered.endswith(".gguf"):
        path = import_path(text)
        return Source(
            kind=PullKind.LOCAL,
            text=text,
            key=f"file:{path}",
            model_name=_model_name(model_name or _name_from_filename(path.name)),
            path=path,
        )
    raise SourceError(
        f"{text[:200]!r} cannot be pulled: use hf.co/<org>/<repo>:<quantization>, an http(s) URL of a "
        "GGUF file, or the name of a file in the import folder. The Ollama library is not available here."
    )


# --- Talking to the source ------------------------------------------------------------------


def allow_hosts(source: Source) -> list[str]:
    """Hosts trusted although internal: the allow-list, and for hub names the configured hub.

    ``HF_ENDPOINT`` is set by the operator (often a company mirror on the LAN), not typed
    by an admin, so its host is trusted for the names that go to it.
    """
    hosts = list(settings.PULL_ALLOW_HOSTS)
    if source.is_hf:
        url = httpx.URL(settings.HF_ENDPOINT)
        host = url.host if ":" not in url.host else f"[{url.host}]"
        hosts.append(host if url.port is None else f"{host}:{url.port}")
    return hosts


def request_headers(source: Source) -> dict[str, str]:
    if source.is_hf and settings.HF_TOKEN:
        return {"Authorization": f"Bearer {settings.HF_TOKEN}"}
    return {}


def check_source_url(source: Source) -> None:
    """Refuse a URL source to an internal address before anything is queued."""
    if source.kind == PullKind.URL:
        fetch.check_url(source.url, allow_hosts=allow_hosts(source), allow_private=settings.PULL_ALLOW_PRIVATE)


def fetch_prefix(
    url: str, length: int, *, headers: Mapping[str, str], hosts: Collection[str], timeout: float = 30.0
) -> tuple[bytes, int | None]:
    """The first ``length`` bytes of ``url`` (a Range request) and the whole file's size."""
    request = httpx.Headers(headers)
    request["Range"] = f"bytes=0-{length - 1}"
    request["Accept-Encoding"] = "identity"
    try:
        # fetch's own guarded opener: every hop's address is checked and pinned.
        with fetch._client(timeout) as client, fetch._open(
            client,
            url,
            headers=request,
            allow_hosts=hosts,
            allow_private=settings.PULL_ALLOW_PRIVATE,
            resolver=fetch.system_resolver,
        ) as response:
            if response.status_code == 206:
                match = re.fullmatch(r"bytes \d+-\d+/(\d+)", response.headers.get("content-range", ""))
                total = int(match.group(1)) if match else None
            elif response.status_code == 200:
                length_header = response.headers.get("content-length", "")
                total = int(length_header) if length_header.isdigit() else None
            else:
                raise fetch._status_error(response)
            body = bytearray()
            for chunk in response.iter_raw(min(length, 1 << 20)):
                body += chunk
                if len(body) >= length:
                    break
    except httpx.HTTPError as exc:
        raise DownloadError(f"Could not read {url[:200]}: {exc or type(exc).__name__}.") from exc
    return bytes(body[:length]), total


def plan_files(source: Source) -> Plan:
    """What to download for a remote source, with sizes where the server tells them."""
    headers, hosts = request_headers(source), allow_hosts(source)
    if source.kind == PullKind.URL:
        _data, size = fetch_prefix(source.url, 1, headers=headers, hosts=hosts)
        return Plan(kind=PullKind.URL, files=[RemoteFile(url=source.url, name="model.gguf", size=size)])
    if not source.is_hf:
        raise SourceError("Only remote sources have a download plan.")
    names = hf_list_files(
        endpoint=settings.HF_ENDPOINT,
        repo_id=source.repo_id,
        headers=headers,
        allow_hosts=hosts,
        allow_private=settings.PULL_ALLOW_PRIVATE,
    )
    wants_safetensors = source.kind == PullKind.HF_SAFETENSORS and any(n.endswith(".safetensors") for n in names)
    if not wants_safetensors:
        try:
            filename = pick_gguf_file(names, quant=source.quant)
        except fetch.NoMatchingFile as exc:
            if source.quant is None:
                raise SourceError(f"{source.repo_id} has neither safetensors weights nor a GGUF file.") from None
            raise SourceError(str(exc)) from None
        url = hf_file_url(endpoint=settings.HF_ENDPOINT, repo_id=source.repo_id, filename=filename)
        _data, size = fetch_prefix(url, 1, headers=headers, hosts=hosts)
        return Plan(kind=PullKind.HF_GGUF, files=[RemoteFile(url=url, name="model.gguf", size=size)])
    # Top-level files only: subfolders hold other formats (original/, onnx/) vLLM does not read.
    chosen = sorted(n for n in names if "/" not in n and _VLLM_FILE_RE.fullmatch(n))
    if "config.json" not in chosen:
        raise SourceError(f"{source.repo_id} has no config.json; vLLM cannot serve it.")
    files = []
    for name in chosen:
        url = hf_file_url(endpoint=settings.HF_ENDPOINT, repo_id=source.repo_id, filename=name)
        _data, size = fetch_prefix(url, 1, headers=headers, hosts=hosts)
        files.append(RemoteFile(url=url, name=name, size=size))
    return Plan(kind=PullKind.HF_SAFETENSORS, files=files)


def remote_gguf_info(url: str, *, headers: Mapping[str, str], hosts: Collection[str]) -> GGUFInfo:
    """Read a remote GGUF file's header with Range requests (never the whole file)."""
    length = HEADER_FIRST_READ
    while True:
        data, total = fetch_prefix(url, length, headers=headers, hosts=hosts)
        if total is None:
            raise SourceError("The server does not say how large the file is, so its header cannot be read.")
        if not data.startswith(GGUF_MAGIC):
            raise InvalidGGUF("Not a GGUF file (bad magic).")
        info = gguf_info_from_prefix(data, file_size=total)
        if info is not None:
            return info
        if length >= HEADER_MAX_READ:
            raise SourceError(f"The GGUF header is larger than {format_bytes(HEADER_MAX_READ)}; cannot estimate.")
        length *= 4


# --- Does it fit? ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FitReport:
    backend: str
    available_bytes: int
    context_length: int
    parallel: int
    verdict: FitVerdict | None
    message: str
    facts: dict[str, Any] = field(default_factory=dict)  # what the estimate is based on

    def as_json(self) -> dict[str, Any]:
        verdict = self.verdict
        return {
            "backend": self.backend,
            "status": verdict.status if verdict else "unknown",
            "message": self.message,
            "available_bytes": self.available_bytes,
            "context_length": verdict.context_length if verdict else self.context_length,
            "parallel": self.parallel,
            "max_parallel": verdict.max_parallel if verdict else None,
            "total_bytes": verdict.estimate.total if verdict else None,
            "weights_bytes": verdict.estimate.weights if verdict else None,
            "kv_cache_bytes": verdict.estimate.kv_cache if verdict else None,
            "overhead_bytes": verdict.estimate.overhead if verdict else None,
            "facts": self.facts,
        }


def available_memory(backend: str) -> int:
    return int(settings.GPU_MEMORY_BYTES if backend == Backend.VLLM else settings.ENGINE_MEMORY_BYTES)


def fit_report(
    shape: ModelShape,
    *,
    backend: str,
    context_length: int | None = None,
    parallel: int | None = None,
    facts: dict[str, Any] | None = None,
) -> FitReport:
    """The verdict for ``shape`` on the memory configured for ``backend``.

    Embedded models run at most ``EMBEDDED_CONTEXT`` tokens per chat with
    ``EMBEDDED_PARALLEL`` chats at once, so those are the defaults there.
    """
    available = available_memory(backend)
    parallel = parallel or settings.EMBEDDED_PARALLEL
    context = context_length or shape.context_length or 4096
    if backend == Backend.EMBEDDED and not context_length:
        context = min(context, settings.EMBEDDED_CONTEXT)
    if available <= 0:
        return FitReport(
            backend=backend,
            available_bytes=0,
            context_length=context,
            parallel=parallel,
            verdict=None,
            message=_("Unknown: set GPU_MEMORY_BYTES to the memory of the vLLM server's GPU."),
            facts=facts or {},
        )
    verdict = fit_verdict(shape=shape, available_bytes=available, context_length=context, parallel=parallel)
    return FitReport(
        backend=backend,
        available_bytes=available,
        context_length=context,
        parallel=parallel,
        verdict=verdict,
        message=verdict.message,
        facts=facts or {},
    )


def _gguf_facts(info: GGUFInfo) -> dict[str, Any]:
    return {
        "format": "gguf",
        "family": info.family,
        "parameter_size": info.parameter_size,
        "quantization": info.quantization,
        "context_length": info.context_length,
        "file_size": info.file_size,
    }


def estimate_source(
    source: Source, *, context_length: int | None = None, parallel: int | None = None
) -> FitReport:
    """Estimate memory for a source before pulling it (network for remote sources)."""
    if source.kind == PullKind.LOCAL:
        assert source.path is not None
        info = read_gguf_info(source.path)
        return fit_report(
            ModelShape.from_gguf(info),
            backend=Backend.EMBEDDED,
            context_length=context_length,
            parallel=parallel,
            facts=_gguf_facts(info),
        )
    plan = plan_files(source)
    headers, hosts = request_headers(source), allow_hosts(source)
    if plan.kind in (PullKind.URL, PullKind.HF_GGUF):
        info = remote_gguf_info(plan.files[0].url, headers=headers, hosts=hosts)
        return fit_report(
            ModelShape.from_gguf(info),
            backend=Backend.EMBEDDED,
            context_length=context_length,
            parallel=parallel,
            facts=_gguf_facts(info),
        )
    config_file = next(f for f in plan.files if f.name == "config.json")
    data, _total = fetch_prefix(config_file.url, CONFIG_MAX_BYTES, headers=headers, hosts=hosts)
    try:
        config = json.loads(data)
    except ValueError:
        raise SourceError("The repository's config.json is not valid JSON.") from None
    weights = sum(f.size or 0 for f in plan.files if f.name.endswith(".safetensors"))
    shape = ModelShape.from_hf_config(config, weights_bytes=weights)
    return fit_report(
        shape,
        backend=Backend.VLLM,
        context_length=context_length,
        parallel=parallel,
        facts={
            "format": "safetensors",
            "family": str(config.get("model_type", "")),
            "context_length": shape.context_length,
            "file_size": plan.total_bytes,
        },
    )


def shape_details(info: GGUFInfo) -> dict[str, Any]:
    """What a registered model keeps of its GGUF header for later estimates."""
    return {
        "architecture": info.architecture,
        "parameter_count": info.parameter_count,
        "block_count": info.block_count,
        "embedding_length": info.embedding_length,
        "head_count": info.head_count,
        "head_count_kv": info.head_count_kv,
        "key_length": info.key_length,
        "value_length": info.value_length,
        "context_length": info.context_length,
    }


def shape_from_details(details: Mapping[str, Any], *, weights_bytes: int, context_length: int) -> ModelShape | None:
    if not details.get("block_count") or not details.get("head_count"):
        return None
    return ModelShape(
        weights_bytes=weights_bytes,
        block_count=int(details["block_count"]),
        embedding_length=int(details.get("embedding_length") or 0),
        head_count=int(details["head_count"]),
        head_count_kv=details.get("head_count_kv"),
        context_length=int(details.get("context_length") or context_length),
        key_length=details.get("key_length"),
        value_length=details.get("value_length"),
    )


__all__ = [
    "DownloadError",
    "FitReport",
    "Plan",
    "RemoteFile",
    "Source",
    "SourceError",
    "UnsafeURL",
    "estimate_source",
    "fit_report",
    "parse_source",
    "plan_files",
]
