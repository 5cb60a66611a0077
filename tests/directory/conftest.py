"""Fixtures of the directory tests: signed-in clients for the personas."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import AbstractUser
from django.test import Client


@pytest.fixture
def signed_in() -> Callable[[AbstractUser], Client]:
    def make(user: AbstractUser) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def admin_client(admin_user: AbstractUser, signed_in: Callable[[AbstractUser], Client]) -> Client:
    return signed_in(admin_user)
