"""`manage.py bootstrap`, which `make run` calls: the bundled models and the first admin."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from chat.models import Conversation, Message, MessageStatus, Role
from models_admin.models import LLMModel

pytestmark = pytest.mark.django_db


def bootstrap() -> str:
    out = StringIO()
    call_command("bootstrap", stdout=out)
    return out.getvalue()


def test_first_run_installs_the_models_and_prints_a_generated_admin_password(settings: Any) -> None:
    settings.PLATFORM_ADMIN_USER = "admin"
    settings.PLATFORM_ADMIN_PASSWORD = ""
    output = bootstrap()
    password = output.split("with password: ", 1)[1].split()[0]
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    chat = LLMModel.objects.get(name="smollm2", tag="135m")
    assert chat.is_default and "completion" in chat.capabilities
    assert LLMModel.objects.get(name="smollm2-embed", tag="135m").capabilities == ["embedding"]

    again = bootstrap()  # idempotent: nothing new, no second password
    assert "password" not in again
    assert LLMModel.objects.count() == 2


def test_admin_password_from_the_environment_is_used(settings: Any) -> None:
    settings.PLATFORM_ADMIN_USER = "boss"
    settings.PLATFORM_ADMIN_PASSWORD = "a-long-chosen-password"
    output = bootstrap()
    assert "a-long-chosen-password" not in output
    assert get_user_model().objects.get(username="boss").check_password("a-long-chosen-password")


def test_answers_cut_off_by_a_restart_are_marked_failed(settings: Any) -> None:
    settings.PLATFORM_ADMIN_PASSWORD = "a-long-chosen-password"
    owner = get_user_model().objects.create_user(username="alice", password="x")
    conversation = Conversation.objects.create(owner=owner)
    now = timezone.now()
    # Its process stopped: the lease ran out. Another web node's answer renews its own.
    answer = Message.objects.create(conversation=conversation, role=Role.ASSISTANT, status=MessageStatus.STREAMING,
                                    content="Half an", lease_until=now - timedelta(seconds=1))
    elsewhere = Message.objects.create(conversation=conversation, role=Role.ASSISTANT, status=MessageStatus.STREAMING,
                                       lease_until=now + timedelta(seconds=20))
    assert "Marked 1 answer(s) interrupted" in bootstrap()
    answer.refresh_from_db()
    assert answer.status == MessageStatus.ERROR and "restarted" in answer.error and answer.content == "Half an"
    elsewhere.refresh_from_db()
    assert elsewhere.status == MessageStatus.STREAMING
