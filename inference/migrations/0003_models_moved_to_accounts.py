"""The engine layer holds no models any more: ApiKey and UsageRecord live in ``accounts``.

State only; the tables are kept (and renamed by nothing) so existing rows stay where they are.
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("inference", "0002_api_key"),
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name="ApiKey"),
                migrations.DeleteModel(name="UsageRecord"),
            ],
        ),
    ]
