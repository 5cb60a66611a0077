"""Today's linear conversations become trees: each message's parent is the one before it,
the last message is the current leaf, and the owner is the author. Nothing else changes."""

from django.db import migrations

BATCH = 2000


def forwards(apps, schema_editor):
    Conversation = apps.get_model("chat", "Conversation")
    Message = apps.get_model("chat", "Message")
    for conversation in Conversation.objects.only("id", "owner_id").iterator(chunk_size=500):
        previous = None
        changed = []
        for message in Message.objects.filter(conversation_id=conversation.id).only("id", "parent_id", "author_id").order_by("id"):
            message.parent_id = previous
            message.author_id = conversation.owner_id
            changed.append(message)
            previous = message.id
        for start in range(0, len(changed), BATCH):
            Message.objects.bulk_update(changed[start : start + BATCH], ["parent_id", "author_id"])
        if previous is not None:
            Conversation.objects.filter(pk=conversation.id).update(current_leaf_id=previous)


def backwards(apps, schema_editor):
    # A tree cannot become a line without choosing branches; the columns are dropped by the
    # schema migration's reverse, and the linear order (by id) was never changed.
    pass


class Migration(migrations.Migration):
    dependencies = [("chat", "0003_tree_and_projects")]
    operations = [migrations.RunPython(forwards, backwards)]
