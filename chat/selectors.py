"""Reads of conversations, always through the ownership check.

``get_conversation_for_user`` is the one permission helper for conversations: views, the
WebSocket consumer and the API all fetch through it. Sharing and projects extend it here.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from inference.engines.base import ChatMessage

from .models import Conversation, Message, MessageStatus, Role

UserLike = AbstractBaseUser | AnonymousUser


class ConversationNotFound(Exception):
    """Missing and not-yours look the same from outside."""


def conversations_for_user(*, user: UserLike) -> QuerySet[Conversation]:
    if not user.is_authenticated:
        return Conversation.objects.none()
    return Conversation.objects.filter(owner_id=user.pk).order_by("-updated_at")


def get_conversation_for_user(*, user: UserLike, conversation_id: uuid.UUID | str) -> Conversation:
    try:
        key = uuid.UUID(str(conversation_id))
    except ValueError as exc:
        raise ConversationNotFound from exc
    conversation = conversations_for_user(user=user).select_related("model").filter(pk=key).first()
    if conversation is None:
        raise ConversationNotFound
    return conversation


def conversation_messages(*, conversation: Conversation) -> list[Message]:
    return list(conversation.messages.order_by("id"))


def streaming_message(*, conversation: Conversation) -> Message | None:
    return conversation.messages.streaming().order_by("-id").first()


def prompt_messages(*, conversation: Conversation, before_id: int) -> list[ChatMessage]:
    """The history sent to the model: the turns before the answer being generated, newest
    first up to the request bounds (``MAX_MESSAGES_PER_REQUEST``, ``MAX_PROMPT_BYTES``), so a
    long conversation keeps working; the context fit then drops what the model cannot hold."""
    rows = (
        conversation.messages.filter(id__lt=before_id)
        .exclude(role=Role.ASSISTANT, content="")
        .exclude(status=MessageStatus.STREAMING)
        .order_by("-id")
        .values_list("role", "content")[: settings.MAX_MESSAGES_PER_REQUEST - 1]
    )
    budget = settings.MAX_PROMPT_BYTES - len(conversation.system_prompt.encode())
    newest_first: list[ChatMessage] = []
    for role, content in rows:
        budget -= len(content.encode())
        if budget < 0 and newest_first:
            break
        newest_first.append({"role": role, "content": content})
    history: list[ChatMessage] = []
    if conversation.system_prompt:
        history.append({"role": "system", "content": conversation.system_prompt})
    history.extend(reversed(newest_first))
    return history
