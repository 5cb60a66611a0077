"""A project conversation and the four people around it.

alice starts it in her project; bob is an editor there, charlie a viewer, dave an outsider,
and erin is no member but alice shares the conversation with her (read only).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractUser

from chat.models import Conversation, ConversationShare, Role
from chat.services import conversation_create
from projects.models import Membership, Project, ProjectRole
from tests.conftest import make_user
from tests.factories import add_messages


@dataclass
class Team:
    alice: AbstractUser
    bob: AbstractUser
    charlie: AbstractUser
    dave: AbstractUser
    erin: AbstractUser
    project: Project
    conversation: Conversation


def make_team(alice: AbstractUser, bob: AbstractUser, charlie: AbstractUser, *, history: bool = True) -> Team:
    dave, erin = make_user("dave"), make_user("erin")
    project = Project.objects.create(name="Launch <b>plan</b>", created_by=alice, instructions="Answer briefly.")
    for person, role in ((alice, ProjectRole.OWNER), (bob, ProjectRole.EDITOR), (charlie, ProjectRole.VIEWER)):
        Membership.objects.create(project=project, user=person, role=role)
    conversation = conversation_create(owner=alice, project=project, title="Launch date")
    if history:
        add_messages(conversation, (Role.USER, "When do we launch?"), (Role.ASSISTANT, "On friday, the secret date."))
    ConversationShare.objects.create(conversation=conversation, user=erin, permission="read", shared_by=alice)
    return Team(alice, bob, charlie, dave, erin, project, conversation)
