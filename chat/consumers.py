"""The chat sockets.

``ConversationConsumer`` (``/ws/c/<id>/``) relays one conversation's events to everyone who
has it open and accepts send, regenerate, continue and stop from those who may write.
``SidebarConsumer`` (``/ws/home/``) keeps a page without an open conversation up to date.
Both hear their user's group: the sidebar's changes and "your access changed".

Access is checked through ``chat.access`` on connect and again on every write, so a share
revoked or a member removed while the socket is open stops working at once.
"""

from __future__ import annotations

import logging
from typing import Any

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import UsageSource
from accounts.selectors import user_is_pending
from generation.run import GenerationRefused, GenerationRun, prepare
from webio import layer_watch
from webio.sockets import SafeJsonConsumer

from . import services
from .access import Access, ConversationForbidden, ConversationNotFound, conversation_access, get_conversation
from .events import conversation_group, relay, user_group
from .generation import GenerationJob, publish, request_snapshot, request_stop, start_generation
from .models import Conversation, Message, MessageStatus
from .serializers import message_payload

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
_LEVELS = {Access.NONE: "none", Access.READ: "read", Access.WRITE: "write", Access.OWNER: "owner"}


@database_sync_to_async
def _open(user: Any, conversation_id: str) -> tuple[Conversation, Access, Message | None] | None:
    try:
        conversation, level = get_conversation(user=user, conversation_id=conversation_id)
    except ConversationNotFound:
        return None
    answer = conversation.messages.streaming().order_by("-id").first()
    if answer is None and conversation.current_leaf_id is not None:
        answer = conversation.messages.filter(pk=conversation.current_leaf_id, role="assistant").first()
    return conversation, level, answer


def _refresh_active(user: Any) -> bool:
    """Re-read ``is_active`` into the socket's user (loaded once, at connect): a deactivated
    account must lose its open sockets, not keep the state it had when it connected."""
    active = get_user_model()._default_manager.filter(pk=user.pk, is_active=True).exists()
    user.is_active = active
    return active


@database_sync_to_async
def _still_allowed(user: Any) -> bool:
    return _refresh_active(user) and not user_is_pending(user=user)


@database_sync_to_async
def _recheck(user: Any, conversation_id: str) -> tuple[bool, Access]:
    """(exists, access) as of now."""
    _refresh_active(user)
    conversation = Conversation.objects.select_related("project").filter(pk=conversation_id).first()
    if conversation is None:
        return False, Access.NONE
    return True, conversation_access(user=user, conversation=conversation)


def _siblings(message: Message) -> list[int]:
    return list(
        Message.objects.filter(conversation_id=message.conversation_id, parent_id=message.parent_id)
        .order_by("id")
        .values_list("id", flat=True)
    )


@database_sync_to_async
def _start(user: Any, conversation_id: str, action: str, content: dict[str, Any]) -> tuple[services.Turn, GenerationRun, list[dict[str, Any]]]:
    """Store what the action writes and prepare its answer, in one transaction: a refused
    generation (too many answers running, no access, ...) stores nothing."""
    run: GenerationRun | None = None
    try:
        with transaction.atomic():
            conversation, _level = get_conversation(user=user, conversation_id=conversation_id, needed=Access.WRITE)
            model_name = content.get("model") or None
            if action == "send":
                turn = services.message_send(
                    conversation=conversation,
                    user=user,
                    content=content["content"],
                    model_name=model_name,
                    parent_id=content.get("parent_id") if "parent_id" in content else services.LEAF,
                )
            elif action == "regenerate":
                turn = services.message_regenerate(
                    conversation=conversation, user=user, message_id=content.get("message_id"), model_name=model_name
                )
            else:
                turn = services.message_continue(conversation=conversation, user=user, message_id=content.get("message_id"))
            # turn.model was fetched through the access check (get_model_for_user) just now.
            run = prepare(
                user=user, model=turn.model, interface=UsageSource.WEB, messages=turn.history,
                project_id=conversation.project_id,
            )
            frames: list[dict[str, Any]] = []
            if turn.user_message is not None:
                frames.append({"type": "message", "message": message_payload(turn.user_message, _siblings(turn.user_message)),
                               "title": turn.title})
            answer = turn.assistant_message
            if turn.prefix:
                frames.append({"type": "continue", "message": message_payload(answer)})
            else:
                frames.append({"type": "message", "message": message_payload(answer, _siblings(answer)), "title": turn.title})
    except BaseException:
        if run is not None:
            run.discard()
        raise
    return turn, run, frames


class _UserSocket(SafeJsonConsumer):
    """A signed-in user's socket: joined to their own group."""

    groups_joined: list[str]

    async def join(self, *groups: str) -> None:
        self.groups_joined = list(groups)
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)

    async def disconnect(self, code: int) -> None:
        layer_watch.unwatch(self)
        for group in getattr(self, "groups_joined", []):
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception:  # Redis down: its subscriptions went with it
                logger.warning("could not leave %s", group, exc_info=True)

    async def chat_relay(self, event: dict[str, str]) -> None:
        await self.send(text_data=event["text"])

    async def access_changed(self, event: dict[str, Any]) -> None:
        """A share, membership or project changed: nothing to re-check without a conversation."""


class SidebarConsumer(_UserSocket):
    async def connect(self) -> None:
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not await _still_allowed(user):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.join(user_group(user.pk))
        await self.accept()

    async def access_changed(self, event: dict[str, Any]) -> None:
        """The account itself may have been deactivated: then this socket closes too."""
        if not await _still_allowed(self.scope["user"]):
            await self.close(code=CLOSE_FORBIDDEN)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.send_error(_("This socket only listens."))


class ConversationConsumer(_UserSocket):
    conversation_id: str
    access: Access

    async def connect(self) -> None:
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        opened = await _open(user, self.scope["url_route"]["kwargs"]["conversation_id"])
        if opened is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        conversation, self.access, answer = opened
        self.conversation_id = str(conversation.id)
        # Join before reading the state: an answer finalised after this read is announced
        # to the group, so this socket cannot miss it.
        await self.join(conversation_group(conversation.id), user_group(user.pk))
        await self.accept()
        layer_watch.watch(self)
        await self.send_json({"type": "access", "level": _LEVELS[self.access]})
        await self._send_answer_state(answer)

    async def resync(self) -> None:
        """Messages published while the layer was down are lost: the page reloads the
        conversation (sync.json), and the running answer's text comes as a snapshot."""
        opened = await _open(self.scope["user"], self.conversation_id)
        if opened is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await self.send_json({"type": "resync"})
        await self._send_answer_state(opened[2])

    async def _send_answer_state(self, answer: Message | None) -> None:
        if answer is None:
            return
        if answer.status == MessageStatus.STREAMING:
            await request_snapshot(answer.id, self.channel_name)
        else:
            # The page may have been rendered while this answer was still generating.
            await self.send_json(
                {"type": "done", "id": answer.id, "status": answer.status, "content": answer.content,
                 "error": answer.error, "cut_off": answer.cut_off}
            )

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type")
        if kind in ("send", "regenerate", "continue"):
            await self._handle_generate(kind, content)
        elif kind == "stop":
            await self._handle_stop()
        else:
            await self.send_error(_("Unknown request."))

    async def _handle_generate(self, kind: str, content: dict[str, Any]) -> None:
        model_name = content.get("model")
        if model_name is not None and not isinstance(model_name, str):
            await self.send_error(_("The message is malformed."))
            return
        if kind == "send" and not isinstance(content.get("content"), str):
            await self.send_error(_("The message is malformed."))
            return
        try:
            turn, run, frames = await _start(self.scope["user"], self.conversation_id, kind, content)
        except ConversationNotFound:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        except ConversationForbidden as exc:
            await self.send_json({"type": "error", "error": exc.message, "code": "read_only"})
            return
        except (services.ChatError, GenerationRefused) as exc:
            await self.send_error(exc.message)
            return
        group = conversation_group(self.conversation_id)
        for frame in frames:
            if not await publish(self.channel_layer, group, relay(frame)):
                await self.send_json(frame)  # Redis down: at least the sender sees it; others resync
        start_generation(
            GenerationJob(
                conversation_id=self.conversation_id,
                message_id=turn.assistant_message.id,
                run=run,
                prefix=turn.prefix,
                auto_title=turn.first,
            )
        )

    async def _handle_stop(self) -> None:
        user = self.scope["user"]
        answer = await _streaming(user, self.conversation_id)
        if isinstance(answer, str):
            await self.send_json({"type": "error", "error": answer, "code": "read_only"})
        elif answer is not None:
            await request_stop(answer)

    async def access_changed(self, event: dict[str, Any]) -> None:
        exists, level = await _recheck(self.scope["user"], self.conversation_id)
        if level == self.access:
            return
        self.access = level
        await self.send_json({"type": "access", "level": _LEVELS[level]})
        if level == Access.NONE:
            await self.close(code=CLOSE_NOT_FOUND if not exists else CLOSE_FORBIDDEN)


@database_sync_to_async
def _streaming(user: Any, conversation_id: str) -> int | str | None:
    """The answer to stop, a refusal message, or None when nothing is generating."""
    try:
        conversation, _level = get_conversation(user=user, conversation_id=conversation_id, needed=Access.WRITE)
    except ConversationNotFound:
        return _("This conversation does not exist or is not yours.")
    except ConversationForbidden as exc:
        return exc.message
    answer = conversation.messages.streaming().order_by("-id").values_list("id", flat=True).first()
    return answer
