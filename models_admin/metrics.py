"""Pulls and engine replicas for Prometheus, read from the database at scrape time: any web
node reports the same numbers, and no worker has to expose a port (two small queries)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db import connection
from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .models import Pull, PullStatus, VllmEndpoint


class ModelsCollector(Collector):
    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Names only: registering must not query (the database may not exist yet, at migrate).
        yield GaugeMetricFamily("platform_pulls", "Model pulls by state.", labels=["status"])
        yield GaugeMetricFamily("platform_engine_replica_up", "vLLM endpoints: 1 when healthy.", labels=["url"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            pulls = GaugeMetricFamily("platform_pulls", "Model pulls by state.", labels=["status"])
            counts = dict(Pull.objects.values("status").annotate(n=Count("id")).values_list("status", "n"))
            for status in PullStatus.values:
                pulls.add_metric([status], counts.get(status, 0))
            replicas = GaugeMetricFamily(
                "platform_engine_replica_up", "vLLM endpoints: 1 when the last health check passed.", labels=["url"]
            )
            for url, healthy in VllmEndpoint.objects.values_list("url", "healthy"):
                replicas.add_metric([url], 1 if healthy else 0)
        finally:
            connection.close()  # the scrape's thread keeps no connection open between scrapes
        yield pulls
        yield replicas

