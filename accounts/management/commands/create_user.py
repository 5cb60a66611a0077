"""Create an account from the command line (automation, first users)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.services import UserCreateError, user_create


class Command(BaseCommand):
    help = "Create a user. Prints the password when it was generated."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--admin", action="store_true", help="make the user an administrator")
        parser.add_argument("--password", help="the password (default: generate one and print it)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user, password = user_create(
                username=options["username"], password=options["password"], is_admin=options["admin"]
            )
        except UserCreateError as exc:
            raise CommandError(exc.message) from exc
        role = "administrator" if options["admin"] else "user"
        self.stdout.write(f"Created {role} {user.get_username()}.")
        if not options["password"]:
            self.stdout.write(f"Password: {password}")
