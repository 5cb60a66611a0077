"""Model management over the Ollama API: administrators only, on the admin pages' services."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import ollama
import pytest
from django.contrib.auth.models import AbstractUser
from django.test import AsyncClient

from api import manage
from api.manage import PullState
from models_admin.services import pulls as model_pulls
from models_admin.services import registry as model_registry
from models_admin.models import LLMModel

from .conftest import IMPORTABLE_FILE
from .helpers import ndjson_lines

pytestmark = pytest.mark.django_db(transaction=True)

ROUTES = [
    ("POST", "/api/pull", {"model": "hf.co/org/repo:Q4_K_M"}),
    ("DELETE", "/api/delete", {"model": "smollm2:135m"}),
    ("POST", "/api/copy", {"source": "smollm2:135m", "destination": "mine"}),
    ("POST", "/api/create", {"model": "mine", "from": "smollm2:135m"}),
]
SERVICES = {"pull_start": model_pulls, "model_delete": model_registry, "model_copy": model_registry, "model_create": model_registry}
needs_services = pytest.mark.skipif(
    not all(hasattr(module, name) for name, module in SERVICES.items()), reason="model management services not there yet"
)


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_model_management_refuses_non_admin_keys(server: str, bob_key: str, smollm: LLMModel, method: str, path: str, body: dict[str, Any]) -> None:
    response = httpx.request(method, server + path, json=body, headers={"Authorization": f"Bearer {bob_key}"})
    assert response.status_code == 403
    assert "administrator" in response.json()["error"]
    assert LLMModel.objects.count() == 1  # nothing was changed


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_model_management_answers_501_while_its_services_are_missing(
    admin_key: str, monkeypatch: pytest.MonkeyPatch, method: str, path: str, body: dict[str, Any]
) -> None:
    for name, module in SERVICES.items():
        monkeypatch.delattr(module, name, raising=False)
    response = await AsyncClient().generic(
        method, path, json.dumps(body), content_type="application/json", headers={"Authorization": f"Bearer {admin_key}"}
    )
    assert response.status_code == 501
    assert "not available" in json.loads(response.content)["error"]


async def test_pull_progress_follows_ollamas_format(monkeypatch: pytest.MonkeyPatch) -> None:
    digest = "sha256:" + "ab" * 32
    states = iter(
        [
            PullState("queued", "", 0, 0, ""),
            PullState("running", digest, 1000, 10, ""),
            PullState("running", digest, 1000, 10, ""),  # no change: no line
            PullState("running", digest, 1000, 600, ""),
            PullState("succeeded", digest, 1000, 1000, ""),
        ]
    )
    monkeypatch.setattr(manage, "_pull_state", lambda _model, _pk: next(states))
    monkeypatch.setattr(manage, "PULL_POLL_SECONDS", 0)

    class FakePull:
        pk = 1

    lines = [json.loads(line) async for line in manage._pull_lines(FakePull(), "org/repo")]  # type: ignore[arg-type]
    assert lines[0] == {"status": "pulling manifest"}
    progress = [line for line in lines if "completed" in line]
    assert [p["completed"] for p in progress] == [10, 600, 1000]
    assert all(p["status"] == "pulling abababababab" and p["digest"] == digest and p["total"] == 1000 for p in progress)
    assert [line["status"] for line in lines[-3:]] == ["verifying sha256 digest", "writing manifest", "success"]


async def test_failed_pull_ends_the_stream_with_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    states = iter([PullState("running", "", 100, 5, ""), PullState("failed", "", 100, 5, "the server said 404")])
    monkeypatch.setattr(manage, "_pull_state", lambda _model, _pk: next(states))
    monkeypatch.setattr(manage, "PULL_POLL_SECONDS", 0)

    class FakePull:
        pk = 1

    lines = [json.loads(line) async for line in manage._pull_lines(FakePull(), "x")]  # type: ignore[arg-type]
    assert lines[-1] == {"error": "the server said 404"}


@needs_services
def test_admin_copies_shows_and_deletes_a_model(
    ollama_client: Callable[..., ollama.Client], admin_key: str, smollm: LLMModel
) -> None:
    client = ollama_client(admin_key)
    assert client.copy("smollm2:135m", "smollm-copy").status == "success"
    assert client.show("smollm-copy").capabilities == ["completion"]
    assert client.delete("smollm-copy").status == "success"
    with pytest.raises(ollama.ResponseError) as gone:
        client.show("smollm-copy")
    assert gone.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as missing:
        client.delete("smollm-copy")
    assert missing.value.status_code == 404


@needs_services
def test_admin_creates_a_custom_model_others_can_chat_with(
    ollama_client: Callable[..., ollama.Client], admin_key: str, alice_key: str, smollm: LLMModel
) -> None:
    statuses = [p.status for p in ollama_client(admin_key).create(
        model="pirate", from_="smollm2:135m", system="You are a pirate.", parameters={"temperature": 0.1}, stream=True
    )]
    assert statuses[-1] == "success"
    shown = ollama_client(alice_key).show("pirate")
    assert shown.modelfile and "You are a pirate." in shown.modelfile
    assert shown.parameters and "temperature" in shown.parameters
    assert ollama_client(alice_key).chat(model="pirate", messages=[{"role": "user", "content": "Hi"}], options={"num_predict": 3, "temperature": 0}).message.content


@needs_services
def test_create_with_a_bad_base_is_404_and_bad_input_400(
    ollama_client: Callable[..., ollama.Client], admin_key: str, smollm: LLMModel
) -> None:
    with pytest.raises(ollama.ResponseError) as missing:
        ollama_client(admin_key).create(model="pirate", from_="no-such-base")
    assert missing.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as bad:
        ollama_client(admin_key).create(model="smollm2:135m", from_="smollm2:135m")
    assert bad.value.status_code == 400


@needs_services
def test_admin_pulls_a_file_from_the_import_folder(configured_server: str, admin_user: AbstractUser, admin_key: str, smollm: LLMModel) -> None:
    client = ollama.Client(host=configured_server, headers={"Authorization": f"Bearer {admin_key}"}, timeout=300)
    progress = list(client.pull(IMPORTABLE_FILE, stream=True))
    assert progress[0].status == "pulling manifest"
    assert progress[-1].status == "success"
    assert any(p.completed and p.total and p.completed == p.total for p in progress)
    assert "tiny-import:latest" in [m.model for m in client.list().models]
    # A second pull of the same file, not streamed.
    assert client.pull(IMPORTABLE_FILE).status == "success"


@needs_services
def test_pull_of_something_unpullable_is_400(ollama_client: Callable[..., ollama.Client], admin_key: str) -> None:
    with pytest.raises(ollama.ResponseError) as bad:
        ollama_client(admin_key).pull("llama3.2")
    assert bad.value.status_code == 400 and "cannot be pulled" in bad.value.error


def test_pull_stream_is_ndjson(configured_server: str, admin_key: str, smollm: LLMModel) -> None:
    if not hasattr(model_pulls, "pull_start"):
        pytest.skip("model management services not there yet")
    with httpx.stream(
        "POST", f"{configured_server}/api/pull", json={"model": IMPORTABLE_FILE}, headers={"Authorization": f"Bearer {admin_key}"}, timeout=300
    ) as response:
        assert response.headers["Content-Type"] == "application/x-ndjson"
        lines = list(ndjson_lines(response))
    assert lines[-1] == {"status": "success"}
