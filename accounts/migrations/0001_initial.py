"""ApiKey and UsageRecord moved here from ``inference``: state only, the tables stay."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def _content_types_to_accounts(apps, schema_editor):  # type: ignore[no-untyped-def]
    # Permissions and admin log entries point at content types: keep them, renamed.
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="inference", model__in=["apikey", "usagerecord"]).update(app_label="accounts")


def _content_types_to_inference(apps, schema_editor):  # type: ignore[no-untyped-def]
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="accounts", model__in=["apikey", "usagerecord"]).update(app_label="inference")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("inference", "0002_api_key"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="UsageRecord",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("model_name", models.CharField(max_length=300)),
                        (
                            "source",
                            models.CharField(
                                choices=[("web", "Web"), ("ollama", "Ollama API"), ("openai", "OpenAI API")], max_length=20
                            ),
                        ),
                        ("prompt_tokens", models.PositiveIntegerField(default=0)),
                        ("completion_tokens", models.PositiveIntegerField(default=0)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="usage_records",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "inference_usagerecord",
                        "indexes": [
                            models.Index(fields=["user", "model_name", "created_at"], name="inference_u_user_id_cae869_idx")
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="ApiKey",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("name", models.CharField(max_length=100, verbose_name="name")),
                        ("prefix", models.CharField(max_length=16)),
                        ("hashed_key", models.CharField(max_length=64, unique=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("last_used_at", models.DateTimeField(blank=True, null=True)),
                        ("revoked_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="api_keys",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={"db_table": "inference_apikey", "ordering": ["-created_at"]},
                ),
            ],
        ),
        migrations.RunPython(_content_types_to_accounts, _content_types_to_inference),
    ]
