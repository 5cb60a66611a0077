"""A project with one persona per role: alice owns it, bob edits, charlie views; dave is not
a member (the outsider)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AbstractUser, User
from django.test import Client

from projects.models import Project, ProjectRole
from projects.services import member_add, project_create
from tests.conftest import make_user


@pytest.fixture
def dave(db: None) -> AbstractUser:
    return make_user("dave")


@pytest.fixture
def project(alice: User, bob: User, charlie: User) -> Project:
    project = project_create(
        creator=alice, name="Quarterly report", description="Numbers for Q3.", instructions="Answer in French."
    )
    member_add(project=project, user=bob, role=ProjectRole.EDITOR)
    member_add(project=project, user=charlie, role=ProjectRole.VIEWER)
    return project


def client_for(user: AbstractUser | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client
