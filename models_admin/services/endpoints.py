"""vLLM endpoints: add, delete, health-check, and register the models they serve."""

from __future__ import annotations

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..models import Backend, LLMModel, VllmEndpoint
from .audit import admin_action_record, models_changed
from .errors import ModelError, UserLike
from .registry import vllm_model_register


def _endpoint_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if url.endswith("/v1"):
        url = url[:-3]
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise ModelError(f"{url[:200]!r} is not a valid URL.") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ModelError("A vLLM endpoint is an http(s) URL such as http://vllm:8000.")
    return url


def vllm_endpoint_add(*, actor: UserLike, url: str, api_key: str = "") -> VllmEndpoint:
    """Register a vLLM server (checked at once) and the models it serves."""
    url = _endpoint_url(url)
    with transaction.atomic():
        endpoint, created = VllmEndpoint.objects.get_or_create(url=url, defaults={"api_key": api_key})
        if not created and api_key:
            endpoint.api_key = api_key
            endpoint.save(update_fields=["api_key"])
        admin_action_record(actor=actor, action="endpoint.add", target=url)
    vllm_endpoint_check(endpoint=endpoint, register_models=True)
    models_changed("endpoint")
    return endpoint


def vllm_endpoint_delete(*, actor: UserLike, endpoint: VllmEndpoint) -> None:
    with transaction.atomic():
        url = endpoint.url
        endpoint.delete()
        admin_action_record(actor=actor, action="endpoint.delete", target=url)
    models_changed("endpoint")


def _running_requests(metrics: str) -> int | None:
    """Requests a server reports running: vLLM's and llama.cpp's Prometheus gauges."""
    total = None
    for line in metrics.splitlines():
        if line.startswith(("vllm:num_requests_running", "llamacpp:requests_processing")):
            try:
                total = (total or 0) + int(float(line.rsplit(" ", 1)[-1]))
            except ValueError:
                continue
    return total


def vllm_endpoint_check(*, endpoint: VllmEndpoint, register_models: bool = False) -> VllmEndpoint:
    """Ask one endpoint which models it serves (GET /v1/models) and how busy it is."""
    headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
    served: list[str] = []
    error = ""
    running = 0
    try:
        with httpx.Client(timeout=5.0, trust_env=False) as client:
            response = client.get(endpoint.url + "/v1/models", headers=headers)
            if response.status_code != 200:
                error = f"HTTP {response.status_code} from /v1/models"
            else:
                served = [str(row["id"]) for row in response.json().get("data", []) if isinstance(row, dict) and "id" in row]
                try:
                    metrics = client.get(endpoint.url + "/metrics", headers=headers)
                    running = (_running_requests(metrics.text) or 0) if metrics.status_code == 200 else 0
                except httpx.HTTPError:
                    running = 0
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    endpoint.healthy = not error
    endpoint.served_models = served if not error else endpoint.served_models
    endpoint.in_flight = running
    endpoint.last_error = error
    endpoint.last_checked = timezone.now()
    endpoint.save(update_fields=["healthy", "served_models", "in_flight", "last_error", "last_checked"])
    if register_models and not error:
        for served_name in served:
            if not LLMModel.objects.filter(backend=Backend.VLLM, upstream_name=served_name).exists():
                vllm_model_register(served_name=served_name, context_length=settings.VLLM_CONTEXT)
    return endpoint


def vllm_endpoints_check() -> list[VllmEndpoint]:
    """Health-check every enabled endpoint (the periodic beat task)."""
    return [vllm_endpoint_check(endpoint=e) for e in VllmEndpoint.objects.filter(enabled=True)]
