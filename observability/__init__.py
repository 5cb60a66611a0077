"""Metrics for Prometheus and request ids in the logs: the platform's own telemetry.

Below every other app (``audit | observability``): anything may record into it, it imports
no project app. Metrics are served on a listener of their own (``METRICS_PORT``), never in the
user-facing URL space."""
