"""A real OpenID provider (the npm package ``oidc-provider``, started with Node) on loopback,
and the real platform configured for it as an operator would: OIDC on, local passwords off,
the provider's ``staff-admins`` group mapped to admin.

``make test`` installs the provider with ``npm ci``; without it these tests fail and say so.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import browser, page  # noqa: F401 (headless Chromium, as in tests/browser)
from tests.conftest import ROOT, LiveServer, free_port, start_live_server

PROVIDER_SCRIPT = ROOT / "tests" / "signin" / "oidc_provider" / "server.mjs"
CLIENT_ID = "platform"
CLIENT_SECRET = "platform-test-secret-0123456789abcdef"


@dataclass
class SSOPlatform:
    issuer: str
    server: LiveServer
    provider_log: Path

    @property
    def url(self) -> str:
        return self.server.url


def _start_provider(port: int, redirect_uri: str, log: Path) -> subprocess.Popen[bytes]:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("The OpenID provider for these tests is missing: run `make test` (it runs `npm ci`)")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [node, str(PROVIDER_SCRIPT), "--port", str(port), "--redirect-uri", redirect_uri,
             "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )
    issuer = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the OpenID provider did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def sso_platform(django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSOPlatform]:
    logs = tmp_path_factory.mktemp("sso")
    platform_port, provider_port = free_port(), free_port()
    callback = f"http://127.0.0.1:{platform_port}/accounts/sso/callback/"
    provider = _start_provider(provider_port, callback, logs / "provider.log")
    issuer = f"http://127.0.0.1:{provider_port}"
    env = {
        "OIDC_ENABLED": "true",
        "OIDC_PROVIDER_NAME": "Company SSO",
        "OIDC_ISSUER": issuer,
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_SCOPES": "openid email profile groups",
        "OIDC_ADMIN_GROUP": "staff-admins",
        "LOCAL_PASSWORDS": "false",
    }
    try:
        with start_live_server(django_db_blocker, logs, extra_env=env, port=platform_port) as server:
            yield SSOPlatform(issuer=issuer, server=server, provider_log=logs / "provider.log")
    finally:
        provider.terminate()
        try:
            provider.wait(timeout=10)
        except subprocess.TimeoutExpired:
            provider.kill()
