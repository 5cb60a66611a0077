"""Create an API key for a user from the command line (automation)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a user and print it (it cannot be shown again)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="command line", help="what the key is for")

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        try:
            user = User.objects.get(username=options["username"], is_active=True)
        except User.DoesNotExist as exc:
            raise CommandError(f"There is no active user called {options['username']!r}.") from exc
        _key, secret = api_key_create(user=user, name=options["name"] or "command line")
        # The key alone on stdout, so scripts can capture it: KEY=$(manage.py create_api_key bob)
        self.stdout.write(secret)
