"""Settings come from the environment and refuse bad values at start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def manage_check(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**clean, "DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("EMBEDDED_PARALLEL", "0", "EMBEDDED_PARALLEL must be a positive integer"),
        ("DEFAULT_MAX_TOKENS", "many", "DEFAULT_MAX_TOKENS"),
        ("DEBUG", "perhaps", "DEBUG"),
        ("SECRET_KEY_FILE", "/nonexistent/secret", "SECRET_KEY_FILE"),
    ],
)
def test_bad_values_stop_the_start_up_with_a_clear_message(tmp_path: Path, name: str, value: str, complaint: str) -> None:
    result = manage_check(tmp_path, **{name: value})
    assert result.returncode != 0
    assert complaint in result.stderr


def test_no_configuration_means_embedded_mode(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='platform.settings'; django.setup();"
            "from django.conf import settings as s;"
            "print(s.DATABASES['default']['ENGINE'], s.CHANNEL_LAYERS['default']['BACKEND'], s.CELERY_BROKER_URL)",
        ],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}, "DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "channels.layers.InMemoryChannelLayer",
        "filesystem://",
    ], result.stderr
    assert (tmp_path / "secret_key").exists(), "a per-installation secret key is generated, none is hard-coded"
