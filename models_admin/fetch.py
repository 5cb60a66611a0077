"""Download model files from URLs that people type in, without reaching internal networks.

Every hop (the URL and each redirect) is parsed with httpx's own URL parser, so the
check and the request cannot disagree about the host; the host is resolved once, every
address is checked, and the connection goes to a checked address while the Host header
and TLS server name keep the original host name. A DNS answer that changes between the
check and the connection (DNS rebinding) therefore cannot steer us inward.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import json
import os
import re
import shutil
import socket
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import quote

import httpx

from inference.fit import format_bytes
from models_admin.names import InvalidModelName, parse_model_name
from models_admin.readable import readable_error

MAX_REDIRECTS: Final = 5
PROGRESS_INTERVAL: Final = 0.25
# The model listing of a repository is a few kilobytes; refuse to buffer more.
HF_LISTING_MAX_BYTES: Final = 8 << 20
DEFAULT_QUANT_PREFERENCE: Final = ("Q4_K_M", "Q4_0", "Q4_1", "Q8_0")

_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
# Headers that carry credentials for one origin and must not follow a redirect to
# another (Hugging Face sends file downloads to a CDN host).
_CREDENTIAL_HEADERS: Final = ("authorization", "cookie", "proxy-authorization")
_HOSTNAME_RE: Final = re.compile(r"[a-z0-9_.-]+")
# WHATWG URL rule: a host whose last label is a number is an IPv4 address in one of
# the legacy forms (2130706433, 0x7f.1, 127.1) that inet_aton understands.
_NUMERIC_LABEL_RE: Final = re.compile(r"(0x[0-9a-f]*|[0-9]+)")
_CONTENT_RANGE_RE: Final = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_SHARD_RE: Final = re.compile(r"-\d{5}-of-\d{5}\.gguf$", re.IGNORECASE)
_QUANT_RE: Final = re.compile(
    r"(?<![a-z0-9])((?:[it]?q\d(?:_[a-z0-9]+)*)|bf16|f16|f32)(?![a-z0-9])", re.IGNORECASE
)
_REPO_ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
# A full file system and an exhausted quota mean the same to an admin: make room.
_NO_SPACE_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EDQUOT})

Resolver = Callable[[str, int], Sequence[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeURL(ValueError):
    """The URL is not allowed: wrong scheme, credentials, or an internal address."""


class DownloadError(Exception):
    """The download failed; the message is meant for the person who started it."""


class DownloadTooLarge(DownloadError):
    pass


class DiskFull(DownloadError):
    """The file system ran out of space while the file was written; the partial file is gone.

    ``written`` is how much of the file reached the disk, ``total`` its size if known.
    """

    def __init__(self, *, written: int, total: int | None) -> None:
        self.written = written
        self.total = total
        of = f" of {format_bytes(total)}" if total is not None else ""
        super().__init__(f"The disk is full: the download stopped at {format_bytes(written)}{of}.")


class DownloadCancelled(Exception):
    """``should_cancel`` asked to stop; the partial file is kept for a later resume."""


class InsufficientSpace(Exception):
    pass


class NoMatchingFile(LookupError):
    """No GGUF file in a repository matches; the message lists what there is."""


@dataclass(frozen=True)
class Progress:
    completed: int
    total: int | None
    speed_bps: float
    eta_seconds: float | None


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    size: int
    sha256: str


@dataclass(frozen=True)
class _Target:
    url: httpx.URL
    host: str
    addresses: tuple[str, ...]


def system_resolver(host: str, port: int) -> list[str]:
    """Return every address ``host`` resolves to, in the system's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_url(
    url: str,
    *,
    allow_hosts: Collection[str] = (),
    allow_private: bool = False,
    resolver: Resolver = system_resolver,
) -> None:
    """Raise ``UnsafeURL`` unless ``url`` is http(s) to public addresses only.

    ``allow_hosts`` lists host names or ``host:port`` pairs (``[v6]:port`` for IPv6
    literals) trusted even when internal; ``allow_private`` trusts every address.
    Literal IP hosts are checked without any DNS lookup. Raises ``DownloadError``
    when the host name does not resolve.
    """
    _vet(url, allow_hosts=allow_hosts, allow_private=allow_private, resolver=resolver)


def _vet(
    url: str, *, allow_hosts: Collection[str], allow_private: bool, resolver: Resolver
) -> _Target:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise UnsafeURL(f"{url[:200]!r} is not a valid URL: {exc}.") from None
    if parsed.scheme not in ("http", "https"):
        raise UnsafeURL(f"Only http and https URLs can be downloaded, not {parsed.scheme!r}.")
    if parsed.userinfo:
        raise UnsafeURL("URLs with a user name or password are not allowed; use a token header.")
    host = parsed.raw_host.decode("ascii").lower()
    port = parsed.port if parsed.port is not None else (443 if parsed.scheme == "https" else 80)
    if not host:
        raise UnsafeURL(f"{url[:200]!r} has no host.")
    if not 0 < port < 65536:
        raise UnsafeURL(f"{url[:200]!r} has an invalid port.")

    literal = _literal_address(host)
    named = f"[{host}]" if isinstance(literal, ipaddress.IPv6Address) else host
    allowed = allow_private or bool({host, f"{named}:{port}"} & {h.lower() for h in allow_hosts})
    # RFC 6761: these names always mean this machine, whatever a resolver says.
    if not allowed and (host.rstrip(".") == "localhost" or host.rstrip(".").endswith(".localhost")):
        raise UnsafeURL(f"{host} is this server; downloads from it are not allowed.")

    if literal is not None:
        addresses = [str(literal)]
    else:
        if not _HOSTNAME_RE.fullmatch(host):
            raise UnsafeURL(f"{host!r} is not a valid host name.")
        try:
            addresses = [str(a) for a in resolver(host, port)]
        except OSError as exc:
            raise DownloadError(f"{readable_error(exc)} ({host})") from exc
        if not addresses:
            raise DownloadError(f"Could not resolve {host}: no addresses.")

    if not allowed:
        for address in addresses:
            ip = ipaddress.ip_address(address.partition("%")[0])
            if not _is_public(ip):
                where = f"{host} is" if literal is not None else f"{host} resolves to {ip},"
                raise UnsafeURL(
                    f"{where} a private, local or reserved address; "
                    "downloads from internal networks are not allowed."
                )
    return _Target(url=parsed, host=host, addresses=tuple(addresses))


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not _NUMERIC_LABEL_RE.fullmatch(host.rsplit(".", 1)[-1]):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        raise UnsafeURL(f"{host!r} looks like an IP address but is not a valid one.") from None


def _is_public(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address reach that address, so judge it instead.
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is None and int(ip) >> 32 == 0:  # IPv4-compatible ::a.b.c.d
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return _is_public(embedded)
        if ip.is_site_local:
            return False
    # is_global alone misses multicast, so spell out every class we refuse.
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def _client(timeout: float) -> httpx.Client:
    # trust_env=False: a proxy from the environment would connect to the host by name
    # and undo the address pinning.
    return httpx.Client(timeout=timeout, trust_env=False, follow_redirects=False)


def _send(client: httpx.Client, target: _Target, headers: httpx.Headers) -> httpx.Response:
    request_headers = httpx.Headers(headers)
    request_headers["Host"] = target.url.netloc.decode("ascii")
    extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
    error: httpx.ConnectError | None = None
    for address in target.addresses:
        request = client.build_request(
            "GET",
            target.url.copy_with(host=address),
            headers=request_headers,
            extensions=extensions,
        )
        try:
            return client.send(request, stream=True)
        except httpx.ConnectError as exc:
            error = exc
    raise DownloadError(f"{readable_error(error) if error else 'No address to connect to.'} ({target.host})") from error


@contextmanager
def _open(
    client: httpx.Client,
    url: str,
    *,
    headers: httpx.Headers,
    allow_hosts: Collection[str],
    allow_private: bool,
    resolver: Resolver,
) -> Iterator[httpx.Response]:
    """Yield the streamed response for ``url``, following and checking each redirect."""
    headers = httpx.Headers(headers)
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        target = _vet(current, allow_hosts=allow_hosts, allow_private=allow_private, resolver=resolver)
        response = _send(client, target, headers)
        location = response.headers.get("location")
        if response.status_code not in _REDIRECT_STATUSES or location is None:
            try:
                yield response
            finally:
                response.close()
            return
        response.close()
        try:
            following = target.url.join(location)
        except httpx.InvalidURL:
            raise DownloadError(f"{target.host} redirected to an invalid URL.") from None
        if (following.scheme, following.host, following.port) != (
            target.url.scheme,
            target.url.host,
            target.url.port,
        ):
            for name in _CREDENTIAL_HEADERS:
                headers.pop(name, None)
        current = str(following)
    raise DownloadError(f"Too many redirects (more than {MAX_REDIRECTS}) from {url[:200]}.")


def _status_error(response: httpx.Response) -> DownloadError:
    host = response.request.headers.get("host", "the server")
    return DownloadError(
        f"{host} answered HTTP {response.status_code} {response.reason_phrase} "
        f"for {response.url.path}."
    )


class _ProgressMeter:
    """Report progress at most every PROGRESS_INTERVAL seconds, and once at the end."""

    def __init__(
        self, on_progress: Callable[[Progress], None] | None, *, start: int, total: int | None
    ) -> None:
        self._on_progress = on_progress
        self._start = start
        self._total = total
        self._started_at = self._reported_at = time.monotonic()

    def update(self, completed: int, *, final: bool = False) -> None:
        now = time.monotonic()
        if self._on_progress is None or (not final and now - self._reported_at < PROGRESS_INTERVAL):
            return
        self._reported_at = now
        elapsed = now - self._started_at
        # Speed of this session only: the resumed prefix arrived at some other time.
        speed = (completed - self._start) / elapsed if elapsed > 0 else 0.0
        eta = (self._total - completed) / speed if self._total is not None and speed > 0 else None
        self._on_progress(
            Progress(completed=completed, total=self._total, speed_bps=speed, eta_seconds=eta)
        )


def download(
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    allow_hosts: Collection[str] = (),
    allow_private: bool = False,
    expected_sha256: str | None = None,
    resume: bool = True,
    on_progress: Callable[[Progress], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    chunk_size: int = 1 << 20,
    resolver: Resolver = system_resolver,
) -> DownloadResult:
    """Download ``url`` into ``dest`` (a temporary path the caller renames) and hash it.

    With ``resume`` an existing partial ``dest`` is continued with a Range request
    (or restarted if the server ignores it). Raises ``UnsafeURL``, ``DownloadError``
    (``DownloadTooLarge`` above ``max_bytes``, ``DiskFull`` when the disk fills up) or
    ``DownloadCancelled``. A failed or cancelled download keeps its partial file for a
    resume; a too-large one, a full disk or a checksum mismatch deletes it.
    """
    expected = expected_sha256.lower().removeprefix("sha256:") if expected_sha256 else None
    offset = dest.stat().st_size if resume and dest.is_file() else 0
    if offset > max_bytes:
        offset = 0
    # Hash the kept prefix before connecting: for a large model this takes seconds,
    # long enough for a server to give up on an idle connection.
    prefix_digest = _hash_prefix(dest, offset)

    request_headers = httpx.Headers(headers or {})
    # Ask for the bytes as stored: a compressed body would make Range offsets, sizes
    # and the hash refer to something else than the file.
    request_headers["Accept-Encoding"] = "identity"

    def receive(response: httpx.Response, *, offset: int) -> DownloadResult:
        size, digest = _receive(
            response,
            dest,
            offset=offset,
            prefix_digest=prefix_digest,
            max_bytes=max_bytes,
            chunk_size=chunk_size,
            on_progress=on_progress,
            should_cancel=should_cancel,
        )
        return _finish(dest, size=size, digest=digest, expected=expected)

    try:
        with _client(timeout) as client:

            def open_(extra: Mapping[str, str]) -> AbstractContextManager[httpx.Response]:
                return _open(
                    client,
                    url,
                    headers=httpx.Headers({**request_headers, **extra}),
                    allow_hosts=allow_hosts,
                    allow_private=allow_private,
                    resolver=resolver,
                )

            if offset:
                with open_({"Range": f"bytes={offset}-"}) as response:
                    if response.status_code in (200, 206):
                        return receive(response, offset=offset)
                    if response.status_code != 416:
                        raise _status_error(response)
                    if _range_total(response) == offset:
                        # The partial file was complete already (a crash after the
                        # last byte but before the rename).
                        _ProgressMeter(on_progress, start=offset, total=offset).update(offset, final=True)
                        return _finish(dest, size=offset, digest=prefix_digest, expected=expected)
                # The server refused the range: the partial file is longer than what
                # it has now, so start again from the first byte.
            with open_({}) as response:
                if response.status_code != 200:
                    raise _status_error(response)
                return receive(response, offset=0)
    except DownloadTooLarge:
        dest.unlink(missing_ok=True)
        raise
    except httpx.HTTPError as exc:
        raise DownloadError(f"Download failed: {exc or type(exc).__name__}.") from exc


def _receive(
    response: httpx.Response,
    dest: Path,
    *,
    offset: int,
    prefix_digest: hashlib._Hash,
    max_bytes: int,
    chunk_size: int,
    on_progress: Callable[[Progress], None] | None,
    should_cancel: Callable[[], bool] | None,
) -> tuple[int, hashlib._Hash]:
    """Write the body after the ``offset`` bytes already in ``dest``; return size and hash."""
    if response.status_code == 206:
        match = _CONTENT_RANGE_RE.fullmatch(response.headers.get("content-range", ""))
        if match is None or int(match.group(1)) != offset:
            raise DownloadError("The server answered with a different byte range than asked for.")
        total = None if match.group(3) == "*" else int(match.group(3))
        digest = prefix_digest
    else:
        # 200 to a Range request: the server sends the whole file again.
        offset = 0
        digest = hashlib.sha256()
        length = response.headers.get("content-length", "")
        total = int(length) if length.isdigit() else None
    if total is not None and total > max_bytes:
        raise DownloadTooLarge(
            f"The file is {format_bytes(total)}, over the limit of {format_bytes(max_bytes)}."
        )

    meter = _ProgressMeter(on_progress, start=offset, total=total)
    completed = offset
    with disk_full_guard(dest, total=total), dest.open("r+b" if offset else "wb") as out:
        out.seek(offset)
        out.truncate()
        # iter_raw, not iter_bytes: a body compressed despite Accept-Encoding must not be
        # inflated in memory (a small gzip can expand to gigabytes in one chunk).
        for chunk in response.iter_raw(chunk_size):
            if should_cancel is not None and should_cancel():
                raise DownloadCancelled("The download was cancelled.")
            completed += len(chunk)
            if completed > max_bytes:
                raise DownloadTooLarge(f"The file is larger than the limit of {format_bytes(max_bytes)}.")
            out.write(chunk)
            digest.update(chunk)
            meter.update(completed)
        # The caller renames this file into place next; the data must be on disk first
        # or a crash could leave a complete-looking name over a hole.
        out.flush()
        os.fsync(out.fileno())
    if total is not None and completed != total:
        raise DownloadError(
            f"The connection closed after {format_bytes(completed)} of {format_bytes(total)}."
        )
    meter.update(completed, final=True)
    return completed, digest


@contextmanager
def disk_full_guard(dest: Path, *, total: int | None) -> Iterator[None]:
    """Turn the disk filling up while the block writes ``dest`` into ``DiskFull``.

    Open ``dest`` inside the block, so that it is closed before it is deleted: the partial
    file is not kept for a resume as after a network error, because it holds the very
    space that is missing (and an open file on some file systems keeps it until closed).
    """
    try:
        yield
    except OSError as exc:
        if exc.errno not in _NO_SPACE_ERRNOS:
            raise
        written = _size_or_zero(dest)
        dest.unlink(missing_ok=True)
        raise DiskFull(written=written, total=total) from exc


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _range_total(response: httpx.Response) -> int | None:
    match = re.fullmatch(r"bytes \*/(\d+)", response.headers.get("content-range", ""))
    return int(match.group(1)) if match else None


def _hash_prefix(path: Path, length: int) -> hashlib._Hash:
    digest = hashlib.sha256()
    if length:
        with path.open("rb") as existing:
            remaining = length
            while remaining:
                block = existing.read(min(remaining, 1 << 20))
                if not block:
                    break
                digest.update(block)
                remaining -= len(block)
    return digest


def _finish(dest: Path, *, size: int, digest: hashlib._Hash, expected: str | None) -> DownloadResult:
    sha256 = digest.hexdigest()
    if expected is not None and sha256 != expected:
        dest.unlink(missing_ok=True)
        raise DownloadError(f"Checksum mismatch: expected sha256 {expected}, got {sha256}.")
    return DownloadResult(path=dest, size=size, sha256=sha256)


def disk_free(path: Path) -> int:
    """Return the free bytes on the file system holding ``path`` (or its nearest parent)."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return shutil.disk_usage(existing).free


def ensure_space(path: Path, *, needed_bytes: int, reserve_bytes: int = 0) -> None:
    """Raise ``InsufficientSpace`` unless ``needed_bytes`` fit and ``reserve_bytes`` stay free."""
    free = disk_free(path)
    if needed_bytes + reserve_bytes > free:
        reserve = f" and {format_bytes(reserve_bytes)} kept free" if reserve_bytes else ""
        raise InsufficientSpace(
            f"Not enough disk space: the download needs {format_bytes(needed_bytes)}{reserve}, "
            f"but only {format_bytes(free)} is free."
        )


def parse_hf_name(raw: str) -> tuple[str, str | None]:
    """Split ``hf.co/<org>/<repo>[:<quant>]`` into the repo id and the quantization.

    ``huggingface.co/`` works too; a tag of ``latest`` (or none) means no preference.
    """
    parsed = parse_model_name(raw)
    name, _, tag = parsed.display.rpartition(":")
    host, _, repo_id = name.partition("/")
    if host.lower() not in ("hf.co", "huggingface.co") or repo_id.count("/") != 1:
        raise InvalidModelName(
            f"{raw!r} is not a Hugging Face model name; use hf.co/<org>/<repo>[:<quantization>]."
        )
    return repo_id, None if tag.lower() == "latest" else tag


def pick_gguf_file(filenames: Sequence[str], *, quant: str | None) -> str:
    """Choose the GGUF file for ``quant`` (case-insensitive), or the preferred default.

    Vision projectors (``mmproj``) and split files are never chosen.
    """
    candidates = [
        name
        for name in filenames
        if name.lower().endswith(".gguf") and "mmproj" not in name.lower() and not _SHARD_RE.search(name)
    ]
    for wanted in (quant,) if quant else DEFAULT_QUANT_PREFERENCE:
        # Bounded on both sides so Q4_K does not match Q4_K_M, nor Q4_0 IQ4_0.
        pattern = re.compile(rf"(?<![a-z0-9]){re.escape(wanted)}(?![a-z0-9_])", re.IGNORECASE)
        matches = [name for name in candidates if pattern.search(name)]
        if matches:
            return min(matches, key=lambda name: (len(name), name))
    available = sorted({m.upper() for name in candidates for m in _QUANT_RE.findall(name)})
    if quant:
        raise NoMatchingFile(
            f"No GGUF file for quantization {quant!r}; available: {', '.join(available) or 'none'}."
        )
    if not candidates:
        raise NoMatchingFile("The repository has no single-file GGUF model.")
    return min(candidates, key=lambda name: (_bits(name), len(name), name))


def _bits(filename: str) -> int:
    """Guess bits per weight from a file name, for picking the smallest."""
    match = _QUANT_RE.search(filename)
    if match is None:
        return 99
    label = match.group(1).lower()
    if label in ("bf16", "f16"):
        return 16
    if label == "f32":
        return 32
    return int(label.lstrip("it")[1])


def hf_file_url(*, endpoint: str, repo_id: str, filename: str, revision: str = "main") -> str:
    _check_repo_id(repo_id)
    if any(part in ("", ".", "..") for part in filename.split("/")):
        raise ValueError(f"{filename[:200]!r} is not a file name inside a repository.")
    return f"{endpoint.rstrip('/')}/{repo_id}/resolve/{quote(revision, safe='')}/{quote(filename)}"


def _check_repo_id(repo_id: str) -> None:
    # Both parts end up in URL paths, so ".." must never get through.
    if not _REPO_ID_RE.fullmatch(repo_id) or ".." in repo_id:
        raise InvalidModelName(f"{repo_id[:200]!r} is not a Hugging Face repository id (org/name).")


def hf_list_files(
    *,
    endpoint: str,
    repo_id: str,
    headers: Mapping[str, str] | None = None,
    allow_hosts: Collection[str] = (),
    allow_private: bool = False,
    timeout: float = 30.0,
    resolver: Resolver = system_resolver,
) -> list[str]:
    """List a repository's file names through the Hugging Face model API."""
    _check_repo_id(repo_id)
    url = f"{endpoint.rstrip('/')}/api/models/{repo_id}"
    request_headers = httpx.Headers(headers or {})
    request_headers["Accept-Encoding"] = "identity"
    try:
        with _client(timeout) as client, _open(
            client,
            url,
            headers=request_headers,
            allow_hosts=allow_hosts,
            allow_private=allow_private,
            resolver=resolver,
        ) as response:
            if response.status_code in (401, 403, 404):
                raise DownloadError(
                    f"Hugging Face has no repository {repo_id} that this server can read "
                    f"(HTTP {response.status_code})."
                )
            if response.status_code != 200:
                raise _status_error(response)
            body = bytearray()
            for chunk in response.iter_raw():
                body += chunk
                if len(body) > HF_LISTING_MAX_BYTES:
                    raise DownloadError(f"The file list of {repo_id} is unexpectedly large.")
    except httpx.HTTPError as exc:
        raise DownloadError(f"Could not list the files of {repo_id}: {exc}.") from exc
    try:
        siblings = json.loads(body)["siblings"]
        return [str(entry["rfilename"]) for entry in siblings]
    except (ValueError, KeyError, TypeError):
        raise DownloadError(f"Hugging Face sent an unexpected answer for {repo_id}.") from None
