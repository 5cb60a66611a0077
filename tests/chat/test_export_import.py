"""Export (Markdown, JSON, the zip of everything) and import (ours, ChatGPT's), over HTTP.

alice owns the conversations; bob reads one she shared with him; charlie has no access. Every
refused import must say why and leave no row behind.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from chat import tree
from chat.models import Conversation, Message, MessageStatus, Role
from chat.services import share_add
from tests.factories import add_messages

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parent / "data"
TRICKY = "Ünïcödé ✓ 😀 — 中文\n\n  indented\ttab, trailing spaces   \r\nand \"quotes\" \\ backslash <script>x</script>"


def client_for(user: AbstractUser) -> Client:
    client = Client()
    client.force_login(user)
    return client


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


@pytest.fixture
def branched(alice: AbstractUser) -> Conversation:
    """A question answered twice (regenerated), the first answer followed up, the second current."""
    conversation = Conversation.objects.create(owner=alice, title="Rocket / fuel: \"notes\"?")
    question, first = add_messages(conversation, (Role.USER, "Which fuel?"), (Role.ASSISTANT, "Kerosene."))
    add_messages(conversation, (Role.USER, TRICKY), (Role.ASSISTANT, "Noted."))
    add_messages(conversation, (Role.ASSISTANT, "Liquid hydrogen."), parent=question, model_name="smollm2:latest", cut_off=True)
    return conversation


def upload(client: Client, name: str, data: bytes) -> Any:
    return client.post("/import/", {"file": SimpleUploadedFile(name, data)}, follow=True)


def shape(conversation: Conversation) -> tuple[list[tuple[int | None, str, str, str, bool]], list[str]]:
    """The tree as (parent's position, role, content, status, cut_off) in id order, and the shown branch."""
    rows = list(Message.objects.filter(conversation=conversation).order_by("id"))
    position = {m.id: i for i, m in enumerate(rows)}
    nodes = [
        (position[m.parent_id] if m.parent_id else None, m.role, m.content, m.status, m.cut_off) for m in rows
    ]
    return nodes, [m.content for m in tree.thread(conversation).path]


def counts() -> tuple[int, int]:
    return Conversation.objects.count(), Message.objects.count()


# ---- Export ---------------------------------------------------------------------------------


def test_outsiders_get_404_and_anonymous_visitors_the_login(charlie: AbstractUser, branched: Conversation) -> None:
    for suffix in ("export.md", "export.json"):
        response = client_for(charlie).get(f"/c/{branched.id}/{suffix}")
        assert response.status_code == 404, suffix
        assert b"Kerosene" not in response.content
        anonymous = Client().get(f"/c/{branched.id}/{suffix}")
        assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    assert client_for(charlie).get("/c/not-a-uuid/export.json").status_code == 404


def test_markdown_is_the_current_branch_with_roles_and_times(alice: AbstractUser, bob: AbstractUser, branched: Conversation) -> None:
    share_add(conversation=branched, shared_by=alice, username="bob", permission="read")
    response = client_for(bob).get(f"/c/{branched.id}/export.md")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="rocket-fuel-notes-{branched.id.hex[:8]}.md"'
    text = body(response).decode()
    assert text.startswith('# Rocket / fuel: "notes"?\n')
    assert "## User (alice) · " in text and "Which fuel?" in text
    assert "## Assistant (smollm2:latest) · " in text and "Liquid hydrogen." in text
    assert "Kerosene." not in text  # the other branch


def test_json_is_the_whole_tree(alice: AbstractUser, branched: Conversation) -> None:
    response = client_for(alice).get(f"/c/{branched.id}/export.json")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="rocket-fuel-notes-{branched.id.hex[:8]}.json"'
    document = json.loads(body(response))
    rows = list(Message.objects.filter(conversation=branched).order_by("id"))
    assert {k: document[k] for k in ("format", "version", "id", "title", "project", "current_leaf")} == {
        "format": "private-llm.conversation",
        "version": 1,
        "id": str(branched.id),
        "title": 'Rocket / fuel: "notes"?',
        "project": None,
        "current_leaf": rows[-1].id,
    }
    assert [(m["id"], m["parent"], m["role"], m["content"], m["cut_off"]) for m in document["messages"]] == [
        (m.id, m.parent_id, m.role, m.content, m.cut_off) for m in rows
    ]
    assert document["messages"][0]["author"] == "alice"
    assert set(document["messages"][0]) == {"id", "parent", "role", "content", "author", "status", "model", "cut_off", "created_at"}


def test_json_round_trip_keeps_branches_current_leaf_and_bytes(alice: AbstractUser, bob: AbstractUser, branched: Conversation) -> None:
    share_add(conversation=branched, shared_by=alice, username="bob", permission="read")
    exported = body(client_for(bob).get(f"/c/{branched.id}/export.json"))
    page = upload(client_for(bob), "conversation.json", exported)
    assert page.redirect_chain == [("/settings/data/", 302)]
    assert "Imported 1 conversation." in page.content.decode()
    copy = Conversation.objects.exclude(pk=branched.pk).get()
    assert copy.owner_id == bob.pk and copy.title == branched.title
    assert shape(copy) == shape(branched)
    assert shape(copy)[1][-1] == "Liquid hydrogen."
    assert Message.objects.get(conversation=copy, content=TRICKY).content.encode() == TRICKY.encode()
    assert set(Message.objects.filter(conversation=copy).values_list("author_id", flat=True)) == {bob.pk}
    assert list(Message.objects.filter(conversation=copy).order_by("id").values_list("created_at", flat=True)) == list(
        Message.objects.filter(conversation=branched).order_by("id").values_list("created_at", flat=True)
    )


def test_zip_of_everything_holds_ones_own_conversations_and_imports_back(
    alice: AbstractUser, bob: AbstractUser, branched: Conversation
) -> None:
    other = Conversation.objects.create(owner=alice, title="Second")
    add_messages(other, (Role.USER, "hello"))
    empty = Conversation.objects.create(owner=alice, title="")
    bobs = Conversation.objects.create(owner=bob, title="Bob's, shared with alice")
    add_messages(bobs, (Role.USER, "not alice's to export"))
    share_add(conversation=bobs, shared_by=bob, username="alice", permission="write")
    response = client_for(alice).get("/export/all.zip")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="private-llm-alice-')
    archive = zipfile.ZipFile(io.BytesIO(body(response)))
    index = json.loads(archive.read("index.json"))
    assert index["format"] == "private-llm.export"
    assert {c["id"] for c in index["conversations"]} == {str(branched.id), str(other.id), str(empty.id)}
    assert sorted(archive.namelist()) == sorted(["index.json", *(f"{c['id']}.json" for c in index["conversations"])])
    assert json.loads(archive.read(f"{branched.id}.json"))["current_leaf"] == branched.current_leaf_id
    before = Conversation.objects.filter(owner=alice).count()
    page = upload(client_for(alice), "export.zip", body(client_for(alice).get("/export/all.zip")))
    assert "Imported 3 conversations." in page.content.decode()
    assert Conversation.objects.filter(owner=alice).count() == before + 3
    copy = Conversation.objects.filter(owner=alice, title=branched.title).exclude(pk=branched.pk).get()
    assert shape(copy) == shape(branched)


def test_export_all_costs_a_bounded_number_of_queries(alice: AbstractUser, django_assert_max_num_queries: Any) -> None:
    for i in range(25):
        add_messages(Conversation.objects.create(owner=alice, title=f"c{i}"), (Role.USER, "q"), (Role.ASSISTANT, "a"))
    client = client_for(alice)
    with django_assert_max_num_queries(8):
        response = client.get("/export/all.zip")
    assert len(json.loads(zipfile.ZipFile(io.BytesIO(body(response))).read("index.json"))["conversations"]) == 25


# ---- Import ---------------------------------------------------------------------------------


def test_chatgpt_export_imports_with_its_branches(alice: AbstractUser) -> None:
    page = upload(client_for(alice), "conversations.json", (DATA / "chatgpt_conversations.json").read_bytes())
    assert "Imported 2 conversations." in page.content.decode()
    trip = Conversation.objects.get(owner=alice, title="Plan a trip to Lisbon")
    rows = list(Message.objects.filter(conversation=trip).order_by("id"))
    # The hidden system message, the browsing call and its output are gone; the answer
    # written after browsing hangs under the question, next to the first answer.
    assert [(m.role, m.content[:24]) for m in rows] == [
        ("user", "Plan three days in Lisbo"),
        ("assistant", "Day 1: Alfama and the Mi"),
        ("assistant", "With current opening hou"),
        ("user", "Make day 2 cheaper."),
        ("assistant", "Day 2 on a budget: walk "),
    ]
    question = rows[0]
    assert question.parent_id is None
    assert [m.parent_id for m in rows[1:]] == [question.id, question.id, rows[2].id, rows[3].id]
    assert trip.current_leaf_id == rows[4].id
    assert rows[4].cut_off is True and rows[1].model_name == "gpt-4o" and rows[1].status == MessageStatus.COMPLETE
    assert trip.created_at.timestamp() == pytest.approx(1714000000.123456)
    assert rows[0].created_at.timestamp() == pytest.approx(1714000010.1)

    picture = Conversation.objects.get(owner=alice, title="<script>alert(1)</script> notes")
    path = [m.content for m in tree.thread(picture).path]
    # The empty last message is skipped: the current leaf is the answer above it.
    assert path == ["Describe the tram in this picture.", "A yellow Remodelado tram, line 28."]
    roots = Message.objects.filter(conversation=picture, parent__isnull=True).order_by("id")
    assert [m.content for m in roots] == ["What is in this picture? <b>bold?</b>", "Describe the tram in this picture."]


def test_chatgpt_zip_is_read_for_its_conversations_json(alice: AbstractUser) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("conversations.json", (DATA / "chatgpt_conversations.json").read_bytes())
        archive.writestr("user.json", b'{"id": "user-x"}')
        archive.writestr("dalle-generations/file-1.webp", b"\x00" * 100)
    page = upload(client_for(alice), "chatgpt-export.zip", buffer.getvalue())
    assert "Imported 2 conversations." in page.content.decode()


def test_imported_script_in_a_title_is_shown_as_text(alice: AbstractUser) -> None:
    upload(client_for(alice), "conversations.json", (DATA / "chatgpt_conversations.json").read_bytes())
    picture = Conversation.objects.get(owner=alice, title="<script>alert(1)</script> notes")
    html = client_for(alice).get(f"/c/{picture.id}/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; notes" in html
    assert "<script>alert(1)</script>" not in html


def test_import_needs_a_signed_in_user_a_csrf_token_and_a_file(alice: AbstractUser) -> None:
    data = (DATA / "chatgpt_conversations.json").read_bytes()
    anonymous = Client().post("/import/", {"file": SimpleUploadedFile("c.json", data)})
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post("/import/", {"file": SimpleUploadedFile("c.json", data)}).status_code == 403
    assert client_for(alice).get("/import/").status_code == 405
    page = client_for(alice).post("/import/", {}, follow=True)
    assert page.redirect_chain == [("/settings/data/", 302)] and "Choose a file to import." in page.content.decode()
    assert counts() == (0, 0)


def test_data_page_offers_export_and_import(alice: AbstractUser) -> None:
    page = client_for(alice).get("/settings/data/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'href="/export/all.zip"' in html and 'action="/import/"' in html and 'enctype="multipart/form-data"' in html
    assert 'name="csrfmiddlewaretoken"' in html


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def platform_json(**changes: Any) -> bytes:
    document: dict[str, Any] = {
        "format": "private-llm.conversation", "version": 1, "id": "x", "title": "t", "created_at": None,
        "project": None, "current_leaf": 2,
        "messages": [
            {"id": 1, "parent": None, "role": "user", "content": "hi", "author": "x", "status": "complete",
             "model": "", "cut_off": False, "created_at": None},
            {"id": 2, "parent": 1, "role": "assistant", "content": "hello", "author": "x", "status": "complete",
             "model": "", "cut_off": False, "created_at": None},
        ],
    }
    document.update(changes)
    return json.dumps(document).encode()


def refused(user: AbstractUser, name: str, data: bytes) -> str:
    page = upload(client_for(user), name, data)
    assert page.redirect_chain == [("/settings/data/", 302)]
    assert counts() == (0, 0)
    html = page.content.decode()
    assert "flash-error" in html and "Nothing was imported." in html
    return html


def test_malformed_json_is_refused(alice: AbstractUser) -> None:
    assert "This file could not be read: The request is malformed: not valid JSON (line 1, column 11)." in refused(
        alice, "c.json", b'{"title": '
    )
    assert "not valid UTF-8" in refused(alice, "c.json", b"\xff\xfe{}")


def test_wrong_shapes_are_refused(alice: AbstractUser) -> None:
    neither = "This file is neither a Private LLM conversation export nor a ChatGPT export (conversations.json)."
    assert neither in refused(alice, "c.json", b'{"hello": "world"}')
    assert neither in refused(alice, "c.json", b'"just a string"')
    assert "ChatGPT conversation 1 has no mapping of messages" in refused(alice, "c.json", b'["nope"]')
    assert "conversation 1 (“t”) has no list of messages" in refused(alice, "c.json", platform_json(messages="nope"))
    cycle = platform_json(messages=[{"id": 1, "parent": 2, "role": "user", "content": "a"},
                                    {"id": 2, "parent": 1, "role": "assistant", "content": "b"}])
    assert "the messages of conversation 1 (“t”) do not form a tree" in refused(alice, "c.json", cycle)
    missing = platform_json(messages=[{"id": 1, "parent": 7, "role": "user", "content": "a"}])
    assert "answers a message that is not there" in refused(alice, "c.json", missing)
    bad_role = platform_json(messages=[{"id": 1, "parent": None, "role": "wizard", "content": "a"}])
    assert "message 1 of conversation 1 (“t”)" in refused(alice, "c.json", bad_role)
    assert "version (2) is not one this platform reads" in refused(alice, "c.json", platform_json(version=2))
    assert "This file holds no conversations." in refused(alice, "c.json", b"[]")


def test_limits_on_size_conversations_messages_and_length(alice: AbstractUser, settings: Any) -> None:
    settings.IMPORT_MAX_BYTES = 2000
    assert "The file is too large to import (at most 2000 bytes)." in refused(alice, "c.json", b" " * 2001)
    settings.IMPORT_MAX_BYTES = 50 << 20
    settings.IMPORT_MAX_CONVERSATIONS = 1
    chatgpt = (DATA / "chatgpt_conversations.json").read_bytes()
    assert "more than 1 conversations" in refused(alice, "c.json", chatgpt)
    settings.IMPORT_MAX_CONVERSATIONS = 10_000
    settings.IMPORT_MAX_MESSAGES = 6
    # The first conversation fits; the second passes the bound: neither is kept.
    assert "more than 6 messages" in refused(alice, "c.json", chatgpt)
    settings.IMPORT_MAX_MESSAGES = 200_000
    settings.MAX_MESSAGE_CHARS = 10
    assert "A message of conversation 1 (“t”) is too long (11 characters, at most 10)." in refused(
        alice, "c.json", platform_json(messages=[{"id": 1, "parent": None, "role": "user", "content": "x" * 11}])
    )


def test_zip_bomb_is_refused_without_unpacking_it(alice: AbstractUser) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("index.json", b"{}")
        with archive.open("bomb.json", "w") as member:
            block = b"\x00" * (1 << 20)
            for _ in range(200):
                member.write(block)
    data = buffer.getvalue()
    assert len(data) < 1 << 20  # 200 MB of zeros, packed
    assert "This zip archive unpacks to more than 200 MiB" in refused(alice, "bomb.zip", data)


def test_zip_member_over_the_limit_is_refused_even_if_its_header_lies(alice: AbstractUser, settings: Any) -> None:
    settings.IMPORT_MAX_BYTES = 4096
    honest = zip_of({"index.json": b"{}", "big.json": platform_json(title="x" * 5000)})
    assert "“big.json” in the zip archive unpacks to more than 4096 bytes." in refused(alice, "big.zip", honest)
    # The same archive claiming a small size in its headers: the read stops at the claimed
    # size (never unpacking more than it allowed for), and the checksum gives the lie away.
    size = len(platform_json(title="x" * 5000)).to_bytes(4, "little")
    lying = honest.replace(size, (100).to_bytes(4, "little"))
    assert lying != honest
    assert "“big.json” in the zip archive is damaged or encrypted." in refused(alice, "big.zip", lying)


def test_unsafe_member_names_are_refused(alice: AbstractUser) -> None:
    for name in ("../evil.json", "/etc/passwd", "a/../../b.json", "C:\\evil.json", "dir\\..\\x.json"):
        html = refused(alice, "x.zip", zip_of({"index.json": b"{}", name: platform_json()}))
        assert "This zip archive contains an unsafe file name" in html, name


def test_too_many_members_are_refused(alice: AbstractUser, settings: Any) -> None:
    settings.IMPORT_MAX_CONVERSATIONS = 2
    members = {"index.json": b"{}", **{f"{i}.json": platform_json() for i in range(102)}}
    assert "This zip archive has too many files (103, at most 102)." in refused(alice, "many.zip", zip_of(members))


def test_damaged_or_foreign_zips_are_refused(alice: AbstractUser) -> None:
    assert "This zip archive is damaged and cannot be read." in refused(alice, "x.zip", b"PK\x03\x04" + b"garbage" * 10)
    foreign = zip_of({"readme.txt": b"hello"})
    assert "neither a Private LLM export (index.json) nor a ChatGPT export" in refused(alice, "x.zip", foreign)
    not_ours = zip_of({"index.json": b"{}", "a.json": b'{"format": "other"}'})
    assert "“a.json” in the archive is not a Private LLM conversation." in refused(alice, "x.zip", not_ours)


async def test_only_the_import_path_takes_bodies_over_the_request_limit(settings: Any) -> None:
    """platform.asgi refuses bodies over MAX_REQUEST_BYTES before Django reads them; an
    export may be larger (up to IMPORT_MAX_BYTES), so /import/ has its own bound."""
    from channels.testing import HttpCommunicator

    from platform.asgi import application

    boundary = b"bench"
    payload = b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    data = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="c.json"\r\n'
            b"Content-Type: application/json\r\n\r\n" + payload + b"\r\n--" + boundary + b"--\r\n")
    headers = [(b"host", b"localhost"), (b"content-type", b"multipart/form-data; boundary=" + boundary),
               (b"content-length", str(len(data)).encode())]
    elsewhere = await HttpCommunicator(application, "POST", "/c/new/", body=data, headers=headers).get_response()
    assert elsewhere["status"] == 413
    # Past the size check: refused by Django for its missing CSRF token instead.
    imported = await HttpCommunicator(application, "POST", "/import/", body=data, headers=headers).get_response(timeout=30)
    assert imported["status"] == 403
