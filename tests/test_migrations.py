"""Upgrading an existing installation: ApiKey and UsageRecord moved from ``inference`` to
``accounts`` with state-only migrations, so `migrate` keeps every row where it was."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.models import ApiKey, UsageOutcome, UsageRecord
from accounts.selectors import api_key_for_secret, hash_secret

BEFORE = [("inference", "0002_api_key"), ("accounts", None)]


@pytest.mark.django_db(transaction=True)
def test_migrate_moves_keys_and_usage_to_accounts_without_losing_rows() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)  # the schema as the last release left it
    executor.loader.build_graph()
    old = executor._create_project_state(with_applied_migrations=True).apps
    OldContentType = old.get_model("contenttypes", "ContentType")
    # Permissions and admin log entries of the old install point at inference's content types.
    OldContentType.objects.get_or_create(app_label="inference", model="apikey")
    OldContentType.objects.filter(app_label="accounts", model="apikey").delete()
    User = old.get_model("auth", "User")
    alice = User.objects.create(username="alice")
    old.get_model("inference", "ApiKey").objects.create(
        user=alice, name="Chatbox", prefix="sk-plat-abcd", hashed_key=hash_secret("sk-plat-secret")
    )
    old.get_model("inference", "UsageRecord").objects.create(
        user=alice, model_name="smollm2:135m", source="ollama", prompt_tokens=12, completion_tokens=34
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    key = api_key_for_secret(secret="sk-plat-secret")
    assert key is not None and key.name == "Chatbox" and key.user.username == "alice"
    assert ApiKey._meta.db_table == "inference_apikey"
    record = UsageRecord.objects.get()
    assert (record.model_name, record.source, record.prompt_tokens, record.completion_tokens) == (
        "smollm2:135m", "ollama", 12, 34,
    )
    assert record.outcome == UsageOutcome.COMPLETE  # the new column's default for old rows
    from django.contrib.contenttypes.models import ContentType

    assert ContentType.objects.filter(app_label="accounts", model="apikey").exists()
    assert not ContentType.objects.filter(app_label="inference", model="apikey").exists()


@pytest.mark.django_db(transaction=True)
def test_linear_conversations_become_trees_with_nothing_lost() -> None:
    """Conversations from before branching: each message's parent is the one before it, the
    last is the current leaf, the owner is the author, and the branch shown is the old list."""
    from chat import tree
    from chat.models import Conversation, Message

    executor = MigrationExecutor(connection)
    executor.migrate([("chat", "0001_initial")])
    executor.loader.build_graph()
    old = executor._create_project_state(with_applied_migrations=True).apps
    User = old.get_model("auth", "User")
    OldConversation = old.get_model("chat", "Conversation")
    OldMessage = old.get_model("chat", "Message")
    alice = User.objects.create(username="alice")
    lines = {}
    for title, count in (("long", 7), ("one", 1), ("empty", 0)):
        conversation = OldConversation.objects.create(owner=alice, title=title)
        lines[title] = [
            OldMessage.objects.create(
                conversation=conversation,
                role="user" if i % 2 == 0 else "assistant",
                content=f"{title} message {i} <b>as typed</b>",
                status="complete" if i != count - 1 else "stopped",
            ).id
            for i in range(count)
        ]

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    for title, ids in lines.items():
        conversation = Conversation.objects.get(title=title)
        shown = tree.thread(conversation).path
        assert [m.id for m in shown] == ids
        assert [m.content for m in shown] == [f"{title} message {i} <b>as typed</b>" for i in range(len(ids))]
        assert conversation.current_leaf_id == (ids[-1] if ids else None)
        assert all(m.author_id == conversation.owner_id for m in shown)
        if ids:
            assert shown[-1].status == "stopped"
    assert Message.objects.count() == 8
