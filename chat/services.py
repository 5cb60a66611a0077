"""Writes to conversations and messages. Every interface calls these, nothing writes inline."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from inference.engines.base import ChatMessage
from models_admin.models import LLMModel
from models_admin.selectors import ModelNotFound, default_model_for_user, get_model_for_user

from .models import Conversation, Message, MessageStatus, Role
from .selectors import prompt_messages

TITLE_LENGTH = 60


class ChatError(Exception):
    """A refused chat action, with a message a person can read."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _resolve_model(*, user: User, name: str | None, fallback: LLMModel | None) -> LLMModel:
    if name:
        try:
            return get_model_for_user(user=user, name=name)
        except ModelNotFound as exc:
            raise ChatError(_("The model “%(name)s” is not available to you.") % {"name": name}) from exc
    if fallback is not None:
        try:  # access may have been withdrawn since the conversation started
            return get_model_for_user(user=user, name=fallback.full_name)
        except ModelNotFound:
            pass
    model = default_model_for_user(user=user)
    if model is None:
        raise ChatError(_("No model is available yet. Ask an administrator to add one."))
    return model


def conversation_create(*, owner: User, model_name: str | None = None, title: str = "") -> Conversation:
    model = _resolve_model(user=owner, name=model_name, fallback=None)
    return Conversation.objects.create(owner=owner, model=model, title=title[:200])


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    title = " ".join(title.split())[:200]
    if not title:
        raise ChatError(_("The title cannot be empty."))
    conversation.title = title
    conversation.save(update_fields=["title"])
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    conversation.delete()


@dataclass(frozen=True)
class Turn:
    """A stored user message, its assistant placeholder and what generation needs."""

    user_message: Message
    assistant_message: Message
    model: LLMModel
    history: list[ChatMessage]


def message_send(*, conversation: Conversation, user: User, content: str, model_name: str | None) -> Turn:
    content = content.strip()
    if not content:
        raise ChatError(_("The message is empty."))
    if len(content) > settings.MAX_MESSAGE_CHARS:
        raise ChatError(
            _("The message is too long (%(length)d characters, at most %(limit)d).")
            % {"length": len(content), "limit": settings.MAX_MESSAGE_CHARS}
        )
    model = _resolve_model(user=user, name=model_name, fallback=conversation.model)
    now = timezone.now()
    with transaction.atomic():
        # Row lock: two tabs sending at once must not start two answers.
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if locked.messages.streaming().exists():
            raise ChatError(_("An answer is still being generated. Wait for it or press Stop."))
        user_message = Message.objects.create(conversation=locked, role=Role.USER, content=content)
        assistant = Message.objects.create(
            conversation=locked, role=Role.ASSISTANT, status=MessageStatus.STREAMING, model_name=model.full_name
        )
        title = locked.title or " ".join(content.split())[:TITLE_LENGTH]
        Conversation.objects.filter(pk=locked.pk).update(updated_at=now, model=model, title=title)
    conversation.title, conversation.model, conversation.updated_at = title, model, now
    history = prompt_messages(conversation=conversation, before_id=assistant.id)
    return Turn(user_message=user_message, assistant_message=assistant, model=model, history=history)


def message_finalize(
    *,
    message_id: int,
    content: str,
    status: MessageStatus,
    error: str = "",
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
) -> None:
    """Store the finished answer: the one write after generation, whatever its outcome.
    Usage is not recorded here: ``generation.run`` does it, in the same transaction."""
    Message.objects.filter(pk=message_id).update(
        content=content,
        status=status,
        error=error,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        finished_at=timezone.now(),
    )


def messages_interrupted() -> int:
    """Mark answers left 'generating' by a stopped server as failed; returns how many."""
    return Message.objects.streaming().update(
        status=MessageStatus.ERROR,
        error=_("The server restarted while this answer was being generated."),
        finished_at=timezone.now(),
    )
