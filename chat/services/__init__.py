"""Writes to conversations, messages and shares; every interface calls these, nothing writes inline.

One module per concern: ``conversations`` (create, rename, delete, flags, move, fork),
``messages`` (send, edit, regenerate, continue, branches, the answer's one write),
``sharing`` (colleagues and snapshot links). The names below are the app's public surface.
"""

from .conversations import (
    TITLE_LENGTH,
    ChatError,
    conversation_create,
    conversation_delete,
    conversation_flags,
    conversation_fork,
    conversation_move,
    conversation_rename,
    conversation_title_auto,
    placeholder_title,
    resolve_model,
)
from .exports import conversation_json, conversation_markdown, export_all_zip
from .imports import ImportRefused, ImportResult, import_file
from .messages import (
    LEAF,
    Turn,
    branch_select,
    message_continue,
    message_checkpoint,
    message_finalize,
    message_regenerate,
    message_send,
    messages_interrupted,
    messages_lease_extend,
    prompt_messages,
)
from .sharing import NewShareLink, share_add, share_link_create, share_link_revoke, share_remove

__all__ = [
    "LEAF",
    "TITLE_LENGTH",
    "ChatError",
    "ImportRefused",
    "ImportResult",
    "NewShareLink",
    "Turn",
    "branch_select",
    "conversation_create",
    "conversation_delete",
    "conversation_flags",
    "conversation_fork",
    "conversation_json",
    "conversation_markdown",
    "conversation_move",
    "conversation_rename",
    "conversation_title_auto",
    "export_all_zip",
    "import_file",
    "message_continue",
    "message_checkpoint",
    "message_finalize",
    "message_regenerate",
    "message_send",
    "messages_interrupted",
    "messages_lease_extend",
    "placeholder_title",
    "prompt_messages",
    "resolve_model",
    "share_add",
    "share_link_create",
    "share_link_revoke",
    "share_remove",
]
