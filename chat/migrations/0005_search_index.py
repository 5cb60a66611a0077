"""Full-text search indexes on PostgreSQL (message text and titles); SQLite needs none:
search falls back to a plain substring match there (``chat.search``).

The 'simple' configuration: no stemming, so German, Spanish, French, English and Chinese
text is matched the same way (by words, as written).
"""

from django.db import migrations

INDEXES = [
    ("chat_message_fts", "chat_message", "content"),
    ("chat_conversation_title_fts", "chat_conversation", "title"),
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, table, column in INDEXES:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin (to_tsvector('simple'::regconfig, {column}))"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table, _column in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("chat", "0004_tree_from_linear")]
    operations = [migrations.RunPython(create, drop)]
