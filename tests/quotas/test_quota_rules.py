"""The quota rules themselves: how a user's and their groups' limits combine, how tokens of
the day and month are counted (raw records for today and yesterday, rollups before), and the
shared counters for requests per minute and running answers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone as dt_timezone
import pytest
from django.contrib.auth.models import AbstractUser
from django.core.cache import cache

from accounts.selectors import Limit, TokensUsed, effective_quota, tokens_used
from accounts.services import usage_rollup_day
from generation import limits
from generation.limits import GenerationRefused, check_tokens, count_request, user_slot

from .helpers import group_quota, seed_usage, user_quota

pytestmark = pytest.mark.django_db

# A fixed "now" in the middle of a month (UTC is the platform's TIME_ZONE in tests).
NOW = datetime(2026, 3, 18, 15, 0, tzinfo=dt_timezone.utc)


@pytest.fixture(autouse=True)
def _fresh_counters() -> Iterator[None]:
    cache.clear()  # the counters live in the cache; user ids repeat between tests
    yield
    cache.clear()


def test_without_any_quota_nothing_is_limited(alice: AbstractUser) -> None:
    quota = effective_quota(user_id=alice.pk)
    assert quota.tokens_per_day == quota.tokens_per_month == Limit(None)
    assert quota.requests_per_minute == quota.concurrent_answers == Limit(None)
    assert not quota.counts_tokens


def test_the_most_generous_group_wins_limit_by_limit(alice: AbstractUser, bob: AbstractUser) -> None:
    group_quota("interns", [alice, bob], tokens_per_day=1_000, requests_per_minute=30)
    group_quota("research", [alice], tokens_per_day=50_000, concurrent_answers=2)
    quota = effective_quota(user_id=alice.pk)
    assert quota.tokens_per_day == Limit(50_000, "group", "research")
    assert quota.requests_per_minute == Limit(30, "group", "interns")
    assert quota.concurrent_answers == Limit(2, "group", "research")
    assert quota.tokens_per_month == Limit(None)
    # Bob is only an intern.
    assert effective_quota(user_id=bob.pk).tokens_per_day == Limit(1_000, "group", "interns")


def test_a_users_own_limit_overrides_their_groups_higher_or_lower(alice: AbstractUser, bob: AbstractUser) -> None:
    group_quota("team", [alice, bob], tokens_per_day=10_000, requests_per_minute=10)
    user_quota(alice, tokens_per_day=500)  # stricter than the group
    user_quota(bob, tokens_per_day=1_000_000)  # more generous than the group
    alice_quota, bob_quota = effective_quota(user_id=alice.pk), effective_quota(user_id=bob.pk)
    assert alice_quota.tokens_per_day == Limit(500, "user")
    assert bob_quota.tokens_per_day == Limit(1_000_000, "user")
    # A limit the user's own quota leaves blank still comes from the group.
    assert alice_quota.requests_per_minute == Limit(10, "group", "team")


def test_tokens_of_today_and_of_the_month(alice: AbstractUser, bob: AbstractUser) -> None:
    seed_usage(alice, tokens=100, at=NOW - timedelta(hours=1))  # today
    seed_usage(alice, tokens=30, at=NOW - timedelta(days=1))  # yesterday: raw, not rolled up yet
    seed_usage(alice, tokens=7, at=NOW - timedelta(days=40))  # last month
    seed_usage(bob, tokens=5_000, at=NOW - timedelta(hours=1))  # someone else
    old = seed_usage(alice, tokens=1_000, at=NOW - timedelta(days=10))  # this month, before yesterday
    # Before yesterday, the month counts the rollups only: without one, that day is not counted.
    assert tokens_used(user_id=alice.pk, now=NOW) == TokensUsed(today=100, month=130)
    usage_rollup_day(day=old.created_at.date())
    assert tokens_used(user_id=alice.pk, now=NOW) == TokensUsed(today=100, month=1_130)


def test_on_the_first_of_the_month_only_this_months_records_count(alice: AbstractUser) -> None:
    first = datetime(2026, 4, 1, 8, 0, tzinfo=dt_timezone.utc)
    seed_usage(alice, tokens=50, at=first - timedelta(hours=9))  # 31 March
    seed_usage(alice, tokens=20, at=first - timedelta(hours=1))
    assert tokens_used(user_id=alice.pk, now=first) == TokensUsed(today=20, month=20)


def test_a_used_up_daily_quota_is_refused_until_midnight(alice: AbstractUser) -> None:
    group_quota("team", [alice], tokens_per_day=1_000)
    seed_usage(alice, tokens=999, at=NOW - timedelta(hours=2))
    check_tokens(user_id=alice.pk, quota=effective_quota(user_id=alice.pk), now=NOW)  # 1 token left: allowed
    seed_usage(alice, tokens=1, at=NOW - timedelta(hours=1))
    with pytest.raises(GenerationRefused) as refused:
        check_tokens(user_id=alice.pk, quota=effective_quota(user_id=alice.pk), now=NOW)
    assert refused.value.status == 429
    assert refused.value.code == "insufficient_quota"
    assert refused.value.retry_after == 9 * 3600  # 15:00 -> midnight
    assert refused.value.message == (
        "You have used your daily quota of 1,000 tokens (1,000 used). It resets on March 19, 2026, midnight (in 9\xa0hours)."
    )


def test_a_used_up_monthly_quota_is_refused_until_the_first(alice: AbstractUser) -> None:
    user_quota(alice, tokens_per_month=100, tokens_per_day=1_000_000)
    seed_usage(alice, tokens=150, at=NOW - timedelta(minutes=5))
    with pytest.raises(GenerationRefused) as refused:
        check_tokens(user_id=alice.pk, quota=effective_quota(user_id=alice.pk), now=NOW)
    assert refused.value.retry_after == int((datetime(2026, 4, 1, tzinfo=dt_timezone.utc) - NOW).total_seconds())
    assert refused.value.message.startswith("You have used your monthly quota of 100 tokens (150 used). It resets on April 1, 2026")


def test_requests_per_minute_are_counted_per_minute(alice: AbstractUser, bob: AbstractUser) -> None:
    minute = 1_900_000_020.0  # 0 s into a minute
    count_request(user_id=alice.pk, limit=2, now=minute + 1)
    count_request(user_id=alice.pk, limit=2, now=minute + 2)
    count_request(user_id=bob.pk, limit=2, now=minute + 3)  # someone else's minute
    with pytest.raises(GenerationRefused) as refused:
        count_request(user_id=alice.pk, limit=2, now=minute + 45)
    assert (refused.value.status, refused.value.code, refused.value.retry_after) == (429, "rate_limit_exceeded", 15)
    assert refused.value.message == "You have reached your limit of 2 requests per minute. Try again in 15 seconds."
    count_request(user_id=alice.pk, limit=2, now=minute + 61)  # the next minute


def test_running_answers_are_counted_in_the_shared_cache(alice: AbstractUser) -> None:
    first = user_slot(alice.pk, 2)
    second = user_slot(alice.pk, 2)
    assert limits.running_for(alice.pk) == 2
    with pytest.raises(GenerationRefused) as refused:
        user_slot(alice.pk, 2)
    assert refused.value.message == "You already have 2 answers being generated. Wait for one to finish."
    assert limits.running_for(alice.pk) == 2  # the refused request took nothing
    first.release()
    first.release()  # once only
    assert limits.running_for(alice.pk) == 1
    second.release()
    assert limits.running_for(alice.pk) == 0


def test_slots_of_a_crashed_process_expire(alice: AbstractUser, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that dies mid-answer never releases its slot; the count expires instead.
    (Expiry shortened to a second: the fault itself, a killed process, is what leaves the count.)"""
    monkeypatch.setattr(limits, "SLOT_SAFETY_SECONDS", 1)
    user_slot(alice.pk, 1)  # never released
    with pytest.raises(GenerationRefused):
        user_slot(alice.pk, 1)
    time.sleep(1.2)
    assert limits.running_for(alice.pk) == 0
    user_slot(alice.pk, 1).release()
