"""What every service module shares: who acts (``UserLike``) and the exceptions."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

# Who does it: a user from a view or the API; None for the system (tasks, bootstrap).
UserLike = AbstractBaseUser | AnonymousUser | None


def actor_id(actor: UserLike) -> int | None:
    return actor.pk if actor is not None and actor.is_authenticated else None


class ModelError(Exception):
    """A refused model action, with a message a person can read (the API answers 400)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PullInterrupted(Exception):
    """A pull hit a network error it may get past; the task retries (and resumes) it."""


class PullLost(Exception):
    """Another task attempt owns this pull now (our lease ran out); stop touching it."""
