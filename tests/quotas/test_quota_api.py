"""Quotas on the API, with the official clients against the real platform: HTTP 429 in each
protocol's error shape with Retry-After, surfaced by ``ollama`` as ``ResponseError`` and by
``openai`` as ``RateLimitError``. Nothing reaches the engine and no usage is recorded."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import httpx
import ollama
import openai
import pytest
from django.contrib.auth.models import AbstractUser
from django.utils import timezone

from accounts.models import UsageRecord
from models_admin.models import LLMModel
from tests.api.conftest import make_key
from tests.conftest import make_user

from .helpers import group_quota, seed_usage, user_quota

MODEL = "smollm2:135m"
DAILY_REFUSAL = "You have used your daily quota of 1,000 tokens (1,000 used). It resets on "


def _ask_ollama(client: ollama.Client) -> None:
    client.chat(model=MODEL, messages=[{"role": "user", "content": "Hi"}], options={"num_predict": 1})


def _ask_openai(client: openai.OpenAI) -> None:
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=1)


def _seconds_to_midnight() -> int:
    now = timezone.localtime()
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return int((midnight - now).total_seconds())


def test_a_used_up_daily_quota_is_429_on_both_protocols(
    server: str, smollm: LLMModel, ollama_client: Callable[..., ollama.Client], openai_client: Callable[..., openai.OpenAI]
) -> None:
    dana = make_user("dana")
    key = make_key(dana)
    group_quota("interns", [dana], tokens_per_day=1_000)
    seed_usage(dana, tokens=1_000, at=timezone.now() - timedelta(minutes=1))

    with pytest.raises(ollama.ResponseError) as native:
        _ask_ollama(ollama_client(key))
    assert native.value.status_code == 429
    assert native.value.error.startswith(DAILY_REFUSAL)

    with pytest.raises(openai.RateLimitError) as compatible:
        _ask_openai(openai_client(key))
    assert compatible.value.status_code == 429
    assert compatible.value.code == "insufficient_quota"
    assert compatible.value.type == "rate_limit_error"
    assert compatible.value.body["message"].startswith(DAILY_REFUSAL)
    retry_after = int(compatible.value.response.headers["Retry-After"])
    assert abs(retry_after - _seconds_to_midnight()) <= 5

    # The other routes refuse the same way (/api/generate, /v1/completions).
    headers = {"Authorization": f"Bearer {key}"}
    generate = httpx.post(f"{server}/api/generate", json={"model": MODEL, "prompt": "Hi"}, headers=headers, timeout=30)
    assert generate.status_code == 429
    assert generate.json()["error"].startswith(DAILY_REFUSAL)
    assert "Retry-After" in generate.headers
    completions = httpx.post(f"{server}/v1/completions", json={"model": MODEL, "prompt": "Hi"}, headers=headers, timeout=30)
    assert completions.status_code == 429
    assert completions.json()["error"]["code"] == "insufficient_quota"
    assert UsageRecord.objects.filter(user=dana).count() == 1  # only the seeded one


def test_a_users_own_quota_lifts_the_groups_limit(
    server: str, smollm: LLMModel, openai_client: Callable[..., openai.OpenAI]
) -> None:
    erin = make_user("erin")
    group_quota("interns", [erin], tokens_per_day=1_000)
    seed_usage(erin, tokens=1_000, at=timezone.now() - timedelta(minutes=1))
    user_quota(erin, tokens_per_day=1_000_000)
    _ask_openai(openai_client(make_key(erin)))
    assert UsageRecord.objects.filter(user=erin).count() == 2


def test_requests_per_minute_is_429_with_the_seconds_to_wait(
    server: str, smollm: LLMModel, ollama_client: Callable[..., ollama.Client], openai_client: Callable[..., openai.OpenAI]
) -> None:
    frank = make_user("frank")
    key = make_key(frank)
    group_quota("bots", [frank], requests_per_minute=1)
    if time.time() % 60 > 50:  # keep both requests in one minute
        time.sleep(61 - time.time() % 60)
    _ask_openai(openai_client(key))
    with pytest.raises(openai.RateLimitError) as compatible:
        _ask_openai(openai_client(key))
    assert compatible.value.code == "rate_limit_exceeded"
    wait = int(compatible.value.response.headers["Retry-After"])
    assert 1 <= wait <= 60
    assert compatible.value.body["message"].startswith("You have reached your limit of 1 request per minute. Try again in ")
    with pytest.raises(ollama.ResponseError) as native:
        _ask_ollama(ollama_client(key))
    assert native.value.status_code == 429
    assert native.value.error.startswith("You have reached your limit of 1 request per minute.")
    assert UsageRecord.objects.filter(user=frank).count() == 1


def test_concurrent_answers_are_limited_across_requests(
    server: str, smollm: LLMModel, ollama_client: Callable[..., ollama.Client], openai_client: Callable[..., openai.OpenAI]
) -> None:
    grace: AbstractUser = make_user("grace")
    key = make_key(grace)
    user_quota(grace, concurrent_answers=1)
    stream = openai_client(key).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Write a long story about the sea."}], max_tokens=400, stream=True
    )
    next(iter(stream))  # the first answer is running
    with pytest.raises(ollama.ResponseError) as refused:
        _ask_ollama(ollama_client(key))
    assert refused.value.status_code == 429
    assert refused.value.error == "You already have 1 answer being generated. Wait for it to finish."
    stream.close()
    # The slot comes back when the first answer ends (its usage is recorded then).
    deadline = time.monotonic() + 30
    while not UsageRecord.objects.filter(user=grace).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    _ask_ollama(ollama_client(key))
    assert UsageRecord.objects.filter(user=grace).count() == 2
