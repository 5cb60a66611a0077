"""Start the whole platform in the foreground: web server (daphne, with the embedded engine
inside it) and a Celery worker with its beat scheduler. Ctrl-C stops all of it.

    python -m platform.run [--host 127.0.0.1] [--port 8000]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from types import FrameType


def _commands(host: str, port: int, data_dir: str) -> dict[str, list[str]]:
    python = sys.executable
    return {
        "web": [python, "-m", "daphne", "-b", host, "-p", str(port), "--proxy-headers", "platform.asgi:application"],
        "worker": [
            python, "-m", "celery", "-A", "platform.celery", "worker", "--beat", "--loglevel=INFO",
            "--concurrency=2", "--schedule", os.path.join(data_dir, "celerybeat-schedule"),
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    args = parser.parse_args()
    data_dir = os.environ.get("DATA_DIR", os.path.join(os.getcwd(), "var"))
    os.makedirs(data_dir, exist_ok=True)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "platform.settings", "PYTHONUNBUFFERED": "1"}
    children = {name: subprocess.Popen(cmd, env=env) for name, cmd in _commands(args.host, args.port, data_dir).items()}
    print(f"Platform starting at http://{args.host}:{args.port}/ (Ctrl-C stops it)", flush=True)

    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"{name} exited with code {child.returncode}; stopping the platform", file=sys.stderr)
                exit_code = child.returncode or 1
                stopping = True
        time.sleep(0.2)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    print("Platform stopped.", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
