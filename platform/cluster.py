"""The scale-out shape on one machine: several web nodes (daphne) behind HAProxy, one Celery
worker with its beat scheduler, over one PostgreSQL and one Redis.

    DATABASE_URL=postgres://… REDIS_URL=redis://… python -m platform.cluster [--port 8080] [--nodes 2]

Each node is a separate process on its own port (``--first-node-port``, then the next ones).
Nothing ties a person to a node: sessions live in the database, socket groups, stop requests
and snapshots travel through Redis (the channel layer), so HAProxy needs no sticky sessions.
It checks ``/healthz`` on each node every two seconds and sends nothing to one that is down.
``tests/scaleout/`` starts the same cluster through :class:`Cluster`. Ctrl-C stops all of it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx

ROOT = Path(__file__).resolve().parent.parent

# Long-lived answers and sockets: a WebSocket or a stream may stay quiet for a while between
# frames (a slow first token), so the tunnel timeout is long; the rest are HAProxy's usual.
HAPROXY_CONFIG = """\
global
    maxconn 4096

defaults
    mode http
    option forwardfor
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    timeout tunnel 1h
    timeout http-request 30s

frontend platform
    bind {bind}:{port}
    default_backend nodes

backend nodes
    # Sockets stay open for as long as a chat page does: spread by open connections.
    balance leastconn
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter 2s fall 2 rise 1
    # Which node answered (the scale-out tests read it; harmless for users).
    http-response set-header X-Served-By %s
{servers}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Child:
    """One process of the cluster, its output in a log file."""

    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a kill takes its children too
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signum)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, then SIGKILL if it has not exited in ``timeout`` seconds."""
        if self.process is None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=10)


@dataclass
class Node:
    name: str
    port: int
    child: Child

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Cluster:
    """``nodes`` web processes, a worker and HAProxy; ``env`` is the operator's configuration
    (``DATABASE_URL``, ``REDIS_URL``, ``CELERY_QUEUE``…) on top of this process's."""

    env: Mapping[str, str]
    log_dir: Path
    nodes_count: int = 2
    port: int = 0
    first_node_port: int = 0
    bind: str = "127.0.0.1"
    worker: bool = True
    nodes: list[Node] = field(default_factory=list)
    children: list[Child] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "DJANGO_SETTINGS_MODULE": "platform.settings", "PYTHONUNBUFFERED": "1", **self.env, **extra}

    def start(self) -> None:
        if not self.env.get("REDIS_URL"):
            raise SystemExit("Several web nodes need Redis (REDIS_URL): the in-memory channel layer reaches one process only.")
        if not (self.env.get("DATABASE_URL") or "").startswith(("postgres://", "postgresql://")):
            raise SystemExit("Several web nodes need PostgreSQL (DATABASE_URL): SQLite is one machine's file.")
        haproxy = shutil.which("haproxy")
        if haproxy is None:
            raise SystemExit("HAProxy is needed (Debian: apt-get install haproxy; `make test` installs it).")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        python = sys.executable
        for index in range(self.nodes_count):
            name = f"node-{string.ascii_lowercase[index]}"
            port = self.first_node_port + index if self.first_node_port else free_port()
            command = [python, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "--proxy-headers", "platform.asgi:application"]
            extra = {"NODE_NAME": name}
            if self.env.get("METRICS_PORT"):  # each node its own metrics port: the given one, then the next
                extra["METRICS_PORT"] = str(int(self.env["METRICS_PORT"]) + index)
            child = Child(name, command, self._env(**extra), self.log_dir / f"{name}.log")
            self.nodes.append(Node(name, port, child))
            self.children.append(child)
        if self.worker:
            schedule = self.log_dir / "celerybeat-schedule"
            command = [
                python, "-m", "celery", "-A", "platform.celery", "worker", "--beat", "--loglevel=INFO",
                "--concurrency=1", "--without-gossip", "--without-mingle", "--schedule", str(schedule),
            ]
            self.children.append(Child("worker", command, self._env(), self.log_dir / "worker.log"))
        config = self.log_dir / "haproxy.cfg"
        servers = "\n".join(f"    server {node.name} 127.0.0.1:{node.port} check" for node in self.nodes)
        config.write_text(HAPROXY_CONFIG.format(bind=self.bind, port=self.port, servers=servers))
        self.children.append(Child("haproxy", [haproxy, "-db", "-f", str(config)], self._env(), self.log_dir / "haproxy.log"))
        for child in self.children:
            child.start()
        try:
            for node in self.nodes:
                self.wait_healthy(node)
            if self.worker:
                self._wait_for(lambda: " ready." in self.children[len(self.nodes)].logs(), "the worker")
            self._wait_for(self._balancer_serves_every_node, "HAProxy to see every node")
        except BaseException:
            self.stop()
            raise

    def _balancer_serves_every_node(self) -> bool:
        seen = set()
        for _ in range(2 * len(self.nodes)):
            try:
                seen.add(httpx.get(self.url + "/healthz", timeout=2).headers.get("x-served-by"))
            except httpx.HTTPError:
                return False
        return seen == {node.name for node in self.nodes}

    def _wait_for(self, condition: object, what: str, timeout: float = 90) -> None:
        assert callable(condition)
        deadline = time.monotonic() + timeout
        while not condition():
            dead = [child.name for child in self.children if not child.alive()]
            if dead or time.monotonic() > deadline:
                logs = "\n".join(f"--- {c.name}\n{c.logs()[-3000:]}" for c in self.children)
                raise RuntimeError(f"waiting for {what}: {'exited: ' + ', '.join(dead) if dead else 'timed out'}\n{logs}")
            time.sleep(0.1)

    def wait_healthy(self, node: Node) -> None:
        def healthy() -> bool:
            try:
                return httpx.get(node.url + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        self._wait_for(healthy, node.name)

    def restart(self, node: Node, *, kill: bool = False) -> None:
        """Stop a node (SIGTERM, or SIGKILL as a crash) and start it again on the same port."""
        node.child.kill() if kill else node.child.stop()
        node.child.start()
        self.wait_healthy(node)

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()


@contextmanager
def running(cluster: Cluster) -> Iterator[Cluster]:
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")), help="HAProxy's port (default 8080)")
    parser.add_argument("--bind", default=os.environ.get("HOST", "127.0.0.1"), help="HAProxy's address")
    parser.add_argument("--nodes", type=int, default=2, help="how many web nodes (default 2)")
    parser.add_argument("--first-node-port", type=int, default=8101, help="the first node's port (default 8101)")
    args = parser.parse_args()
    if not 1 <= args.nodes <= 26:
        parser.error("--nodes takes 1 to 26")
    data_dir = Path(os.environ.get("DATA_DIR", ROOT / "var"))
    env = {key: os.environ.get(key, "") for key in ("DATABASE_URL", "REDIS_URL", "METRICS_PORT") if os.environ.get(key)}
    # The schema and the first admin once, before any node serves.
    setup_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "platform.settings"}
    for command in (["migrate", "--noinput"], ["collectstatic", "--noinput", "--verbosity", "0"], ["bootstrap"]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=setup_env, check=True)
    cluster = Cluster(env=env, log_dir=data_dir / "cluster", nodes_count=args.nodes, port=args.port,
                      first_node_port=args.first_node_port, bind=args.bind)
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    with running(cluster):
        print(f"Platform at http://{args.bind}:{args.port}/ through HAProxy; nodes:", flush=True)
        for node in cluster.nodes:
            print(f"  {node.name} {node.url} (log {node.child.log})", flush=True)
        while not stopping:
            dead = [child.name for child in cluster.children if not child.alive()]
            if dead:
                print(f"{', '.join(dead)} exited; stopping the cluster", file=sys.stderr)
                return 1
            time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
