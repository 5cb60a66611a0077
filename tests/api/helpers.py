"""Helpers for driving the API of a live platform server."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx


def listening_ports(pid: int) -> set[int]:
    """TCP ports a process listens on, read from /proc (Linux)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def engine_urls(pid: int, exclude: int) -> list[str]:
    """The llama.cpp listeners inside a platform process: its loopback ports that answer /slots.

    This observes the engine itself, from outside the server process, with no debug route.
    """
    urls = []
    for port in sorted(listening_ports(pid) - {exclude}):
        url = f"http://127.0.0.1:{port}"
        try:
            response = httpx.get(url + "/slots", timeout=2)
        except httpx.HTTPError:
            continue
        if response.status_code == 200 and isinstance(response.json(), list):
            urls.append(url)
    return urls


def busy_slots(urls: list[str]) -> int:
    return sum(1 for url in urls for slot in httpx.get(url + "/slots", timeout=5).json() if slot["is_processing"])


def decoded_tokens(urls: list[str]) -> int:
    """Tokens the busy slots have generated so far (llama.cpp's /slots)."""
    return sum(
        int((slot.get("next_token") or [{}])[0].get("n_decoded", 0)) if isinstance(slot.get("next_token"), list)
        else int((slot.get("next_token") or {}).get("n_decoded", 0))
        for url in urls
        for slot in httpx.get(url + "/slots", timeout=5).json()
        if slot["is_processing"]
    )


def wait_for(condition: Any, *, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())


class RawHTTP:
    """A bare HTTP/1.1 request on its own socket, so a test can hang up at a moment it chooses."""

    def __init__(self, base_url: str, method: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        url = httpx.URL(base_url)
        self.sock = socket.create_connection((url.host, url.port), timeout=60)
        payload = json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", f"Host: {url.host}:{url.port}", "Content-Type: application/json",
                f"Content-Length: {len(payload)}", "Connection: close"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        self.buffer = b""

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buffer += chunk
        return self.buffer

    def hang_up(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def ndjson_lines(response: httpx.Response) -> Iterator[dict[str, Any]]:
    for line in response.iter_lines():
        if line.strip():
            yield json.loads(line)


def sse_events(response: httpx.Response) -> Iterator[str]:
    """The data of each server-sent event, in order ("[DONE]" included)."""
    for line in response.iter_lines():
        if line.startswith("data: "):
            yield line[6:]
