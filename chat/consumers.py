"""The chat socket: relays one conversation's events and accepts send/stop."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import UsageSource
from generation.run import GenerationRefused, GenerationRun, prepare
from webio.sockets import SafeJsonConsumer

from . import selectors, services
from .generation import (
    GenerationJob,
    conversation_group,
    relay,
    request_snapshot,
    request_stop,
    start_generation,
)
from .models import Conversation, Message
from .serializers import message_payload


@database_sync_to_async
def _conversation(user: Any, conversation_id: str) -> Conversation | None:
    try:
        return selectors.get_conversation_for_user(user=user, conversation_id=conversation_id)
    except selectors.ConversationNotFound:
        return None


@database_sync_to_async
def _last_answer(conversation: Conversation) -> Message | None:
    return conversation.messages.filter(role="assistant").order_by("-id").first()


@database_sync_to_async
def _send(conversation: Conversation, user: Any, content: str, model_name: str | None) -> tuple[services.Turn, GenerationRun]:
    """Store the message and prepare its answer in one transaction: a refused generation
    (too many answers running, ...) stores nothing."""
    run: GenerationRun | None = None
    try:
        with transaction.atomic():
            turn = services.message_send(conversation=conversation, user=user, content=content, model_name=model_name)
            # turn.model was fetched through the access check (get_model_for_user) just now.
            run = prepare(user=user, model=turn.model, interface=UsageSource.WEB, messages=turn.history)
    except BaseException:
        if run is not None:
            run.discard()
        raise
    return turn, run


class ConversationConsumer(SafeJsonConsumer):
    conversation: Conversation
    group: str

    async def connect(self) -> None:
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close(code=4401)
            return
        conversation = await _conversation(user, self.scope["url_route"]["kwargs"]["conversation_id"])
        if conversation is None:
            await self.close(code=4404)
            return
        self.conversation = conversation
        self.group = conversation_group(conversation.id)
        # Join before reading the state: an answer finalised after this read is announced
        # to the group, so this socket cannot miss it.
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        answer = await _last_answer(conversation)
        if answer is None:
            return
        if answer.status == "streaming":
            await request_snapshot(answer.id, self.channel_name)
        else:
            # The page may have been rendered while this answer was still generating.
            await self.send_json(
                {"type": "done", "id": answer.id, "status": answer.status, "content": answer.content, "error": answer.error}
            )

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "send":
            await self._handle_send(content)
        elif kind == "stop":
            await self._handle_stop()
        else:
            await self.send_json({"type": "error", "error": _("Unknown request.")})

    async def _handle_send(self, content: dict[str, Any]) -> None:
        text = content.get("content")
        model_name = content.get("model") or None
        if not isinstance(text, str) or (model_name is not None and not isinstance(model_name, str)):
            await self.send_json({"type": "error", "error": _("The message is malformed.")})
            return
        try:
            turn, run = await _send(self.conversation, self.scope["user"], text, model_name)
        except (services.ChatError, GenerationRefused) as exc:
            await self.send_json({"type": "error", "error": exc.message})
            return
        for message in (turn.user_message, turn.assistant_message):
            await self.channel_layer.group_send(self.group, relay({"type": "message", "message": message_payload(message)}))
        start_generation(
            GenerationJob(conversation_id=str(self.conversation.id), message_id=turn.assistant_message.id, run=run)
        )

    async def _handle_stop(self) -> None:
        answer = await _last_answer(self.conversation)
        if answer is not None and answer.status == "streaming":
            await request_stop(answer.id)

    async def chat_relay(self, event: dict[str, str]) -> None:
        await self.send(text_data=event["text"])

