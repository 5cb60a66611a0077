"""Writes to conversations: create, rename, delete, pin, archive, move, fork.

Each change that other tabs must see is announced after commit (``chat.events``): the
conversation's own sockets and every member's sidebar.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from models_admin.models import LLMModel
from models_admin.selectors import ModelNotFound, default_model_for_user, get_model_for_user
from projects.access import at_least, project_role
from projects.models import Project, ProjectRole

from .. import events, tree
from ..models import Conversation, Message, TitleSource

TITLE_LENGTH = 60


class ChatError(Exception):
    """A refused chat action, with a message a person can read."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def placeholder_title(content: str) -> str:
    """The title until the model names the conversation: the first words of its first
    message. The one rule for it (the browser shows what the server sends)."""
    text = " ".join(content.split())
    if len(text) <= TITLE_LENGTH:
        return text
    cut = text[:TITLE_LENGTH].rsplit(" ", 1)[0] or text[:TITLE_LENGTH]
    return cut + "…"


def clean_title(title: str) -> str:
    return " ".join(title.split())[:200]


def resolve_model(*, user: User, name: str | None, conversation: Conversation | None = None) -> LLMModel:
    """The model to answer with: the one asked for, else the conversation's, else its
    project's default, else the user's default, each through the model access rule."""
    if name:
        try:
            return get_model_for_user(user=user, name=name)
        except ModelNotFound as exc:
            raise ChatError(_("The model “%(name)s” is not available to you.") % {"name": name}) from exc
    fallbacks = []
    if conversation is not None:
        fallbacks.append(conversation.model)
        if conversation.project is not None:
            fallbacks.append(conversation.project.default_model)
    for fallback in fallbacks:
        if fallback is None:
            continue
        try:  # access may have been withdrawn since the conversation started
            return get_model_for_user(user=user, name=fallback.full_name)
        except ModelNotFound:
            continue
    model = default_model_for_user(user=user)
    if model is None:
        raise ChatError(_("No model is available yet. Ask an administrator to add one."))
    return model


def _check_project_for(user: User, project: Project | None) -> None:
    if project is not None and not at_least(project_role(user=user, project=project), ProjectRole.EDITOR):
        raise ChatError(_("You need to be an editor of “%(name)s” to add conversations to it.") % {"name": project.name})


def conversation_create(
    *, owner: User, model_name: str | None = None, title: str = "", project: Project | None = None
) -> Conversation:
    """A new conversation; in ``project`` if given (the owner must be an editor there)."""
    _check_project_for(owner, project)
    probe = Conversation(owner=owner, project=project) if project is not None else None
    model = resolve_model(user=owner, name=model_name, conversation=probe)
    title = clean_title(title)
    conversation = Conversation.objects.create(
        owner=owner, model=model, title=title, project=project, title_source=TitleSource.USER if title else TitleSource.AUTO
    )
    if project is not None:
        events.conversation_changed(conversation, {"action": "created", "title": title, "project": str(project.id)})
    return conversation


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    title = clean_title(title)
    if not title:
        raise ChatError(_("The title cannot be empty."))
    conversation.title = title
    conversation.title_source = TitleSource.USER  # a rename wins over the automatic title
    conversation.save(update_fields=["title", "title_source"])
    events.conversation_changed(conversation, {"action": "renamed", "title": title})
    return conversation


def conversation_title_auto(*, conversation_id: str, title: str) -> bool:
    """Store a generated title unless someone renamed the conversation meanwhile."""
    title = clean_title(title)
    if not title:
        return False
    with transaction.atomic():
        updated = Conversation.objects.filter(pk=conversation_id, title_source=TitleSource.AUTO).update(title=title)
        conversation = Conversation.objects.filter(pk=conversation_id).first() if updated else None
        if conversation is not None:
            events.conversation_changed(conversation, {"action": "renamed", "title": title})
    return bool(updated)


def conversation_delete(*, conversation: Conversation) -> None:
    """Delete it for everyone: open tabs of every member are told, and leave it."""
    with transaction.atomic():
        people = events.members(conversation)
        events.conversation_changed(conversation, {"action": "deleted"}, people=people)
        events.access_changed(conversation=conversation)  # its open sockets close (4404)
        conversation.delete()


def conversation_flags(*, conversation: Conversation, pinned: bool | None = None, archived: bool | None = None) -> Conversation:
    fields = []
    if pinned is not None:
        conversation.pinned = pinned
        fields.append("pinned")
    if archived is not None:
        conversation.archived = archived
        fields.append("archived")
    if fields:
        conversation.save(update_fields=fields)
        events.conversation_changed(
            conversation,
            {"action": "flags", "pinned": conversation.pinned, "archived": conversation.archived},
            people=[conversation.owner_id],
        )
    return conversation


def conversation_move(*, conversation: Conversation, user: User, project: Project | None) -> Conversation:
    """Move into ``project`` (the mover must be an editor there) or out of any (None)."""
    _check_project_for(user, project)
    if conversation.project_id == (project.pk if project else None):
        return conversation
    with transaction.atomic():
        before = events.members(conversation)
        conversation.project = project
        conversation.save(update_fields=["project"])
        after = events.members(conversation)
        payload = {"action": "moved", "project": str(project.id) if project else None,
                   "project_name": project.name if project else "", "title": conversation.title}
        events.conversation_changed(conversation, payload, people=before | after)
        # Those who lost it (members of the old project) must stop seeing it at once.
        events.access_changed(conversation=conversation)
    return conversation


def conversation_fork(*, source: Conversation, user: User, up_to: Message | None, title: str = "") -> Conversation:
    """A private copy for ``user`` of the branch ending at ``up_to`` ("continue in my own copy")."""
    path = tree.thread(source, leaf_id=up_to.id if up_to else None).path
    with transaction.atomic():
        fork = Conversation.objects.create(
            owner=user,
            model=source.model,
            system_prompt=source.system_prompt,
            title=clean_title(title or source.title),
            title_source=TitleSource.USER,
        )
        copies = Message.objects.bulk_create(
            [
                Message(
                    conversation=fork,
                    author_id=message.author_id,
                    role=message.role,
                    content=message.content,
                    status=message.status if message.status != "streaming" else "stopped",
                    error=message.error,
                    model_name=message.model_name,
                    cut_off=message.cut_off,
                    finished_at=message.finished_at,
                )
                for message in path
            ],
            batch_size=500,
        )
        # Two statements per 500 messages, not one per message: ids come back from the insert
        # (PostgreSQL, SQLite 3.35+), then the chain of parents is written in one update.
        for previous, copy in zip(copies, copies[1:]):
            copy.parent_id = previous.pk
        Message.objects.bulk_update(copies[1:], ["parent_id"], batch_size=500)
        fork.current_leaf = copies[-1] if copies else None
        fork.updated_at = timezone.now()
        fork.save(update_fields=["current_leaf", "updated_at"])
    return fork
