"""The platform's metrics (Prometheus, the official ``prometheus_client``). Labels are bounded:
routes are URL patterns, never raw paths; models are the administrator's model names."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

http_requests = Counter(
    "platform_http_requests", "HTTP requests answered, by route pattern, method and status.", ["route", "method", "status"]
)
http_duration = Histogram(
    "platform_http_request_duration_seconds", "Time to the end of the response (streams included), by route.", ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
channel_layer_up = Gauge(
    "platform_channel_layer_up", "1 while this web process's pings through the channel layer (Redis) come back, else 0."
)
sockets_open = Gauge("platform_websockets_open", "WebSocket connections open now, by route.", ["route"])

generations_in_flight = Gauge(
    "platform_generations_in_flight", "Answers being generated now in this process.", ["model", "interface"]
)
generations = Counter("platform_generations", "Answers finished, by model and outcome.", ["model", "outcome"])
time_to_first_token = Histogram(
    "platform_time_to_first_token_seconds", "From the start of a run to its first text.", ["model"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
)
tokens_per_second = Histogram(
    "platform_tokens_per_second", "Completion tokens per second after the first, per answer.", ["model"],
    buckets=(1, 5, 10, 20, 40, 60, 100, 150, 250, 500, 1000),
)
engine_queue = Gauge(
    "platform_engine_queue_depth", "Answers of a model running or waiting in this process (bounded by MAX_GENERATIONS_PER_MODEL).",
    ["model"],
)
