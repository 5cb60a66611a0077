"""Writes to messages: send, edit (a send under an earlier parent), regenerate, continue,
branch selection, and the one write after an answer. Every interface calls these."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from inference.engines.base import ChatMessage
from models_admin.models import LLMModel

from .. import tree
from ..events import after_commit, conversation_group, relay
from ..models import Conversation, Message, MessageStatus, Role, TitleSource
from .conversations import ChatError, placeholder_title, resolve_model

#: ``parent_id`` left out: answer under the conversation's current leaf.
LEAF = object()


@dataclass(frozen=True)
class Turn:
    """An answer about to be generated: its placeholder (and the user message that asked
    for it, unless it is a regeneration or a continuation) and what generation needs."""

    assistant_message: Message
    model: LLMModel
    history: list[ChatMessage]
    user_message: Message | None = None
    #: The text already there (a continued answer): the new text is appended to it.
    prefix: str = ""
    #: This is the conversation's first answer: it may get an automatic title.
    first: bool = False
    title: str = ""


def _check_content(content: str) -> str:
    content = content.strip()
    if not content:
        raise ChatError(_("The message is empty."))
    if len(content) > settings.MAX_MESSAGE_CHARS:
        raise ChatError(
            _("The message is too long (%(length)d characters, at most %(limit)d).")
            % {"length": len(content), "limit": settings.MAX_MESSAGE_CHARS}
        )
    return content


def _lock(conversation: Conversation) -> Conversation:
    """Lock the conversation row: two tabs (or two colleagues) must not start two answers."""
    locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
    running = locked.messages.streaming().select_related("author").first()
    if running is not None:
        who = running.author.get_username() if running.author else ""
        raise ChatError(
            _("%(name)s's answer is still being generated. Wait for it or press Stop.") % {"name": who}
            if who
            else _("An answer is still being generated. Wait for it or press Stop.")
        )
    return locked


def _message_in(conversation: Conversation, message_id: object) -> Message:
    if not isinstance(message_id, int) or isinstance(message_id, bool):
        raise ChatError(_("That message is not part of this conversation."))
    message = Message.objects.filter(conversation=conversation, pk=message_id).first()
    if message is None:
        raise ChatError(_("That message is not part of this conversation."))
    return message


def message_send(
    *,
    conversation: Conversation,
    user: User,
    content: str,
    model_name: str | None,
    parent_id: object = LEAF,
) -> Turn:
    """Store a user message and its answer's placeholder.

    ``parent_id``: the answer this message replies to (None: a new first message). Sending
    under an earlier parent is how an edited message is resent: it becomes a sibling of the
    original, and both branches stay reachable.
    """
    content = _check_content(content)
    model = resolve_model(user=user, name=model_name, conversation=conversation)
    now = timezone.now()
    with transaction.atomic():
        locked = _lock(conversation)
        if parent_id is LEAF:
            parent = locked.current_leaf
        elif parent_id is None:
            parent = None
        else:
            parent = _message_in(locked, parent_id)
            if parent.role != Role.ASSISTANT:
                raise ChatError(_("A message can only follow an answer."))
        first = not locked.messages.filter(role=Role.ASSISTANT).exists()
        user_message = Message.objects.create(
            conversation=locked, parent=parent, author=user, role=Role.USER, content=content
        )
        assistant = Message.objects.create(
            conversation=locked,
            parent=user_message,
            author=user,
            role=Role.ASSISTANT,
            status=MessageStatus.STREAMING,
            model_name=model.full_name,
        )
        title = locked.title
        fields = {"updated_at": now, "model": model, "current_leaf": assistant}
        if not title and locked.title_source == TitleSource.AUTO:
            title = placeholder_title(content)
            fields["title"] = title
        Conversation.objects.filter(pk=locked.pk).update(**fields)
    conversation.title, conversation.model, conversation.updated_at = title, model, now
    conversation.current_leaf_id = assistant.id
    history = prompt_messages(conversation=conversation, leaf_id=user_message.id)
    return Turn(
        user_message=user_message, assistant_message=assistant, model=model, history=history, first=first, title=title
    )


def message_regenerate(*, conversation: Conversation, user: User, message_id: object, model_name: str | None) -> Turn:
    """A new answer to the same message, as a sibling of the old one."""
    model = resolve_model(user=user, name=model_name, conversation=conversation)
    with transaction.atomic():
        locked = _lock(conversation)
        old = _message_in(locked, message_id)
        if old.role != Role.ASSISTANT or old.parent_id is None:
            raise ChatError(_("Only an answer can be regenerated."))
        assistant = Message.objects.create(
            conversation=locked,
            parent_id=old.parent_id,
            author=user,
            role=Role.ASSISTANT,
            status=MessageStatus.STREAMING,
            model_name=model.full_name,
        )
        Conversation.objects.filter(pk=locked.pk).update(updated_at=timezone.now(), current_leaf=assistant, model=model)
    conversation.current_leaf_id = assistant.id
    history = prompt_messages(conversation=conversation, leaf_id=old.parent_id)
    return Turn(assistant_message=assistant, model=model, history=history, title=conversation.title)


def message_continue(*, conversation: Conversation, user: User, message_id: object) -> Turn:
    """Carry on an answer that was stopped or cut at the length limit, in place."""
    with transaction.atomic():
        locked = _lock(conversation)
        answer = _message_in(locked, message_id)
        if answer.role != Role.ASSISTANT or not answer.content:
            raise ChatError(_("Only an answer with some text can be continued."))
        if answer.status != MessageStatus.STOPPED and not answer.cut_off:
            raise ChatError(_("This answer is complete; only a stopped or cut-off answer can be continued."))
        if answer.children.exists():
            raise ChatError(_("Only the last answer of a branch can be continued."))
        model = resolve_model(user=user, name=answer.model_name or None, conversation=locked)
        Message.objects.filter(pk=answer.pk).update(
            status=MessageStatus.STREAMING, cut_off=False, error="", author=user, finished_at=None
        )
        Conversation.objects.filter(pk=locked.pk).update(updated_at=timezone.now(), current_leaf=answer)
    answer.status, answer.cut_off, answer.error, answer.author = MessageStatus.STREAMING, False, "", user
    conversation.current_leaf_id = answer.id
    history = prompt_messages(conversation=conversation, leaf_id=answer.id)
    return Turn(assistant_message=answer, model=model, history=history, prefix=answer.content, title=conversation.title)


def branch_select(*, conversation: Conversation, message_id: object, remember: bool) -> tree.Thread:
    """Show the branch through ``message_id`` (down its newest children). ``remember``
    (writers only) makes it the conversation's current branch for everyone."""
    message = _message_in(conversation, message_id)
    leaf = tree.newest_leaf_below(message.id)
    if remember and leaf != conversation.current_leaf_id:
        Conversation.objects.filter(pk=conversation.pk).update(current_leaf_id=leaf)
        conversation.current_leaf_id = leaf
    return tree.thread(conversation, leaf_id=leaf)


def system_prompt_of(conversation: Conversation) -> str:
    """The project's instructions, then the conversation's own system prompt."""
    parts = []
    if conversation.project is not None and conversation.project.instructions:
        parts.append(conversation.project.instructions)
    if conversation.system_prompt:
        parts.append(conversation.system_prompt)
    return "\n\n".join(parts)


def prompt_messages(*, conversation: Conversation, leaf_id: int) -> list[ChatMessage]:
    """The history sent to the model: the branch up to ``leaf_id``, newest first up to the
    request bounds (``MAX_MESSAGES_PER_REQUEST``, ``MAX_PROMPT_BYTES``), so a long conversation
    keeps working; the context fit then drops what the model cannot hold."""
    ids = tree.history_ids(leaf_id)
    rows = {
        message_id: (role, content)
        for message_id, role, content in Message.objects.filter(id__in=ids)
        .exclude(role=Role.ASSISTANT, content="")
        .values_list("id", "role", "content")
    }
    system = system_prompt_of(conversation)
    budget = settings.MAX_PROMPT_BYTES - len(system.encode())
    newest_first: list[ChatMessage] = []
    for message_id in ids:
        if message_id not in rows:
            continue
        role, content = rows[message_id]
        budget -= len(content.encode())
        if budget < 0 and newest_first:
            break
        newest_first.append({"role": role, "content": content})
    history: list[ChatMessage] = []
    if system:
        history.append({"role": "system", "content": system})
    history.extend(reversed(newest_first))
    return history


def message_finalize(
    *,
    message_id: int,
    content: str,
    status: MessageStatus,
    error: str = "",
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    cut_off: bool = False,
) -> None:
    """Store the finished answer: the one write after generation, whatever its outcome.
    Usage is not recorded here: ``generation.run`` does it, in the same transaction."""
    Message.objects.filter(pk=message_id).update(
        content=content,
        status=status,
        error=error,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cut_off=cut_off,
        finished_at=timezone.now(),
    )


def message_checkpoint(*, message_id: int, content: str, lease_seconds: float) -> bool:
    """A running answer's partial text and a renewed lease, written every few seconds by its
    job (never per token): if the process dies, the text so far survives and the lease runs
    out. False when the answer is no longer generating (finalised meanwhile)."""
    return bool(
        Message.objects.streaming()
        .filter(pk=message_id)
        .update(content=content, lease_until=timezone.now() + timedelta(seconds=lease_seconds))
    )


def messages_lease_extend(*, message_ids: list[int], seconds: float) -> int:
    """Renew the leases of these running answers to ``seconds`` from now, text untouched:
    their process is about to stand still for longer than a lease (a model load). Returns
    how many were still generating."""
    until = timezone.now() + timedelta(seconds=seconds)
    return Message.objects.streaming().filter(pk__in=message_ids).update(lease_until=until)


def messages_interrupted() -> list[Message]:
    """Finalise answers left 'generating' by a process that is gone, as errors that keep their
    partial text; returns them. Another web node's running answers renew their lease and are
    left alone, so any node (or the worker's beat) may call this at any time. An answer that
    has not taken its first lease yet counts from its creation."""
    now = timezone.now()
    grace = now - timedelta(seconds=settings.GENERATION_LEASE_SECONDS)
    orphaned = Message.objects.streaming().filter(
        Q(lease_until__lt=now) | Q(lease_until__isnull=True, created_at__lt=grace)
    )
    failed: list[Message] = []
    error = _("The server restarted while this answer was being generated.")
    # Bounded work per call: the beat calls again soon.
    for message in orphaned.only("id", "conversation_id", "content").order_by("id")[:500]:
        # Conditional on the status: a job that finalises meanwhile wins.
        if Message.objects.streaming().filter(pk=message.pk).update(status=MessageStatus.ERROR, error=error, finished_at=now):
            message.status, message.error = MessageStatus.ERROR, error
            failed.append(message)
            # Tabs still open on it (on other nodes) end their spinner with the reason.
            frame = {"type": "done", "id": message.pk, "status": str(MessageStatus.ERROR), "content": message.content,
                     "error": error, "cut_off": False}
            after_commit([conversation_group(message.conversation_id)], relay(frame))
    return failed