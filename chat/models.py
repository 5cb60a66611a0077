from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class TitleSource(models.TextChoices):
    AUTO = "auto", _("Automatic")
    USER = "user", _("Renamed")


class Conversation(models.Model):
    # Random public ids: conversation URLs reveal nothing about how many others exist.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=200, blank=True)
    model = models.ForeignKey(
        "models_admin.LLMModel", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    system_prompt = models.TextField(blank=True)
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    # The message the conversation currently shows (its branch). Null when empty.
    current_leaf = models.ForeignKey(
        "Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    # ``user`` once a person renamed it: the automatic title never overwrites a rename.
    title_source = models.CharField(max_length=10, choices=TitleSource.choices, default=TitleSource.AUTO)
    pinned = models.BooleanField(default=False)
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [
            models.Index(fields=["owner", "-updated_at"]),
            # The sidebar: pinned first, newest first, keyset-paginated.
            models.Index(fields=["owner", "archived", "-pinned", "-updated_at", "id"], name="chat_conv_sidebar"),
            models.Index(fields=["project", "-updated_at"], name="chat_conv_project"),
        ]

    def __str__(self) -> str:
        return self.title or str(self.id)


class Role(models.TextChoices):
    USER = "user", _("User")
    ASSISTANT = "assistant", _("Assistant")
    SYSTEM = "system", _("System")


class MessageStatus(models.TextChoices):
    COMPLETE = "complete", _("Complete")
    STREAMING = "streaming", _("Generating")
    STOPPED = "stopped", _("Stopped")
    ERROR = "error", _("Error")


class MessageQuerySet(models.QuerySet["Message"]):
    def streaming(self) -> MessageQuerySet:
        return self.filter(status=MessageStatus.STREAMING)


class Message(models.Model):
    """One turn of a conversation: one row per message, finalised once."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    # Messages form a tree: editing a message or regenerating an answer adds a sibling.
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    # Who wrote a user message, or asked for an answer (shared conversations show it).
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    role = models.CharField(max_length=20, choices=Role.choices)
    content = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=MessageStatus.choices, default=MessageStatus.COMPLETE)
    error = models.TextField(blank=True)
    model_name = models.CharField(max_length=300, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    # The engine stopped at the token limit: the answer is cut short and can be continued.
    cut_off = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    #: While generating: until when the job running it (in some web process) vouches for it.
    #: The job renews it with a checkpoint of the partial text every GENERATION_CHECKPOINT_SECONDS;
    #: past it, the process is gone and ``messages_interrupted`` finalises the answer.
    lease_until = models.DateTimeField(null=True, blank=True)

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["conversation", "id"])]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"


class SharePermission(models.TextChoices):
    READ = "read", _("Can read")
    WRITE = "write", _("Can write")


class ConversationShare(models.Model):
    """A conversation shared with one named colleague."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="shares")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="shared_conversations")
    permission = models.CharField(max_length=10, choices=SharePermission.choices, default=SharePermission.READ)
    shared_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["conversation", "user"], name="conversation_share_once")]
        indexes = [models.Index(fields=["user", "conversation"])]


class ShareLink(models.Model):
    """An immutable snapshot of a conversation up to one message, for signed-in colleagues.

    The URL carries ``key`` (the lookup) and a secret compared in constant time; only a
    SHA-256 of the secret is stored, so the database alone cannot open links.
    """

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="share_links")
    key = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    # The snapshot: the path from the root to this message, as it was when shared.
    up_to = models.ForeignKey(Message, null=True, on_delete=models.CASCADE, related_name="+")
    title = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
