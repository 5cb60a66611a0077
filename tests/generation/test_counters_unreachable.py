"""Quota counters live in Redis: while it cannot be reached, a new answer is refused with a
503 "try again" (not let past every quota, not a 500), and an answer that ends meanwhile still
gives its slot back without an error. A real Redis client against a port nobody listens on."""

from __future__ import annotations

import pytest
from django.test import override_settings

from generation.limits import GenerationRefused, UserSlot, count_request, user_slot
from tests.conftest import free_port

DEAD_REDIS = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}}


@override_settings(CACHES=DEAD_REDIS)
def test_a_new_answer_is_refused_with_try_again_while_the_counters_are_unreachable() -> None:
    with pytest.raises(GenerationRefused) as slot:
        user_slot(7, limit=4)
    assert (slot.value.status, slot.value.code, slot.value.retry_after) == (503, "service_unavailable", 2)
    assert slot.value.message == "The server cannot count your requests at the moment. Please try again in a few seconds."
    with pytest.raises(GenerationRefused) as minute:
        count_request(user_id=7, limit=60)
    assert minute.value.status == 503


@override_settings(CACHES=DEAD_REDIS)
def test_an_answer_ending_while_the_counters_are_unreachable_gives_its_slot_back_quietly() -> None:
    slot = UserSlot(7)
    slot.release()  # must not raise: the answer's write comes after it
    slot.release()  # and only once
