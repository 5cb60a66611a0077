"""Opening a conversation costs the same few queries whatever its length or branches."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AbstractUser
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from chat.models import Conversation, Message
from chat.services import conversation_create
from models_admin.models import LLMModel

pytestmark = pytest.mark.django_db


def _long(owner: AbstractUser, turns: int, branches: int = 0) -> Conversation:
    conversation = conversation_create(owner=owner, title=f"{turns} turns")
    parent = None
    for i in range(turns):
        parent = Message.objects.create(conversation=conversation, parent=parent, author=owner,
                                        role="user" if i % 2 == 0 else "assistant", content=f"message {i}")
        for b in range(branches if i % 2 == 1 else 0):
            Message.objects.create(conversation=conversation, parent=parent.parent, role="assistant", content=f"alt {i}.{b}")
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf=parent)
    return conversation


def _queries_to_open(owner: AbstractUser, conversation: Conversation) -> tuple[int, str]:
    client = Client()
    client.force_login(owner)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/c/{conversation.id}/")
    assert response.status_code == 200
    return len(queries), response.content.decode()


def test_a_thousand_messages_open_with_as_many_queries_as_ten(alice: AbstractUser, smollm: LLMModel) -> None:
    short = _long(alice, 10)
    long = _long(alice, 1000, branches=1)
    short_count, _page = _queries_to_open(alice, short)
    long_count, page = _queries_to_open(alice, long)
    assert long_count == short_count
    assert long_count <= 20
    assert "message 999" in page and "message 0" in page
    assert "alt 1.0" not in page  # another branch is not sent, only counted as a sibling
