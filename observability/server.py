"""The metrics listener: prometheus_client's own HTTP server on METRICS_ADDR:METRICS_PORT, in
a thread of the process that exposes them (each web node has its own port). Off unless
METRICS_PORT is set; the address defaults to loopback, for a Prometheus on the same host or
an agent beside it."""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from prometheus_client import start_http_server

logger = logging.getLogger(__name__)
_started = threading.Event()


def start_metrics_server() -> bool:
    port = settings.METRICS_PORT
    if not port or _started.is_set():
        return False
    start_http_server(port, addr=settings.METRICS_ADDR)
    _started.set()
    logger.info("metrics on http://%s:%s/metrics", settings.METRICS_ADDR, port)
    return True
