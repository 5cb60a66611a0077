"""The admin models page: what the table shows, its actions, and the "does it fit?" estimate
for models and for sources before they are pulled."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser
from django.test import Client

from inference.engines import embedded_engine
from models_admin.models import AdminAction, LLMModel, Pull, PullStatus
from models_admin.selectors import model_spec

from .helpers import SMOLLM, SMOLLM_BYTES, ModelServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(admin_user: AbstractUser) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def row_of(html: str, model: str) -> str:
    match = re.search(rf'<tr data-model="{re.escape(model)}".*?</tr>', html, re.S)
    assert match, f"no row for {model}"
    return match.group(0)


def test_table_shows_what_an_admin_needs_about_each_model(staff: Client, smollm: LLMModel, settings: Any) -> None:
    settings.ENGINE_MEMORY_BYTES = 16 << 30
    html = staff.get("/admin/models/").content.decode()
    row = row_of(html, "smollm2:135m")
    for expected in ("llama", "135M", "Q4_1", "gguf", "93.8", "8192", ">chat<", "embedded", "fits", "Everyone", "default"):
        assert expected in row, expected
    assert "Pull a model" in html and "vLLM endpoints" in html and "Import from the server" in html


def test_fit_verdict_follows_the_configured_memory(staff: Client, smollm: LLMModel, settings: Any) -> None:
    settings.ENGINE_MEMORY_BYTES = 200 << 20  # less than the weights plus buffers
    row = row_of(staff.get("/admin/models/").content.decode(), "smollm2:135m")
    assert "does not fit" in row
    settings.ENGINE_MEMORY_BYTES = 460 << 20  # room for a few chats, not eight
    row = row_of(staff.get("/admin/models/").content.decode(), "smollm2:135m")
    assert "ma-fit-fits_reduced" in row and "reduced" in row


def test_loaded_models_show_when_they_unload(staff: Client, smollm: LLMModel) -> None:
    spec = model_spec(smollm)
    embedded_engine().load(spec)
    row = row_of(staff.get("/admin/models/").content.decode(), "smollm2:135m")
    assert "loaded" in row and "until" in row


def test_make_default_copy_and_delete_from_the_page(staff: Client, smollm: LLMModel, admin_user: AbstractUser) -> None:
    response = staff.post(f"/admin/models/{smollm.id}/copy/", {"destination": "house:v1"}, follow=True)
    assert "Copied smollm2:135m to house:v1." in response.content.decode()
    copy = LLMModel.objects.get(name="house", tag="v1")
    assert copy.file_path == smollm.file_path and not copy.is_default

    staff.post(f"/admin/models/{copy.id}/default/")
    assert LLMModel.objects.get(pk=copy.pk).is_default and not LLMModel.objects.get(pk=smollm.pk).is_default

    response = staff.post(f"/admin/models/{copy.id}/delete/", follow=True)
    assert "house:v1 was deleted." in response.content.decode()
    assert not LLMModel.objects.filter(name="house").exists()
    assert Path(smollm.file_path).exists()
    assert list(AdminAction.objects.order_by("created_at").values_list("action", "target")) == [
        ("model.copy", "house:v1"), ("model.set_default", "house:v1"), ("model.delete", "house:v1"),
    ]


def test_copy_to_an_invalid_name_is_refused_with_a_message(staff: Client, smollm: LLMModel) -> None:
    response = staff.post(f"/admin/models/{smollm.id}/copy/", {"destination": "../../etc"}, follow=True)
    html = response.content.decode()
    assert "flash-error" in html and "../../etc" in html
    assert LLMModel.objects.count() == 1


def test_create_form_shows_errors_and_keeps_the_input(staff: Client, smollm: LLMModel) -> None:
    response = staff.post("/admin/models/create/", {"name": "bot", "base": "smollm2:135m", "top_p": "5", "system": "Be kind."})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Ensure this value is less than or equal to 1" in html and "Be kind." in html
    assert not LLMModel.objects.filter(name="bot").exists()


def test_pull_form_starts_a_pull_and_the_page_lists_it(staff: Client, models_dir: Path, model_server: ModelServer) -> None:
    model_server.files["m.gguf"] = SMOLLM_BYTES
    response = staff.post("/admin/models/pull/", {"source": model_server.url("m.gguf"), "model_name": "team:q4"}, follow=True)
    html = response.content.decode()
    assert "Pulling" in html and "team:q4" in html
    pull = Pull.objects.get()
    assert (pull.status, pull.model_name) == (PullStatus.QUEUED, "team:q4")
    assert f'data-pull-id="{pull.id}"' in html


def test_pull_form_explains_a_refusal(staff: Client, models_dir: Path) -> None:
    response = staff.post("/admin/models/pull/", {"source": "http://169.254.169.254/latest"}, follow=True)
    html = response.content.decode()
    assert "not allowed" in html
    assert not Pull.objects.exists()
    # What the admin typed is still in the field, to correct rather than retype.
    assert 'value="http://169.254.169.254/latest"' in html
    # ... once: a later visit shows an empty form again.
    assert 'value="http://169.254.169.254/latest"' not in staff.get("/admin/models/").content.decode()


def test_finished_pulls_show_their_error_after_a_reload(staff: Client, admin_user: AbstractUser) -> None:
    Pull.objects.create(source="http://x/y.gguf", source_key="url:x", kind="url", model_name="y:latest",
                        status=PullStatus.FAILED, error="Not a GGUF file (bad magic).", created_by=admin_user)
    html = staff.get("/admin/models/").content.decode()
    assert "Not a GGUF file (bad magic)." in html


def test_import_folder_files_are_listed(staff: Client, models_dir: Path, settings: Any) -> None:
    (Path(settings.MODEL_IMPORT_DIR) / "sub").mkdir()
    (Path(settings.MODEL_IMPORT_DIR) / "sub" / "team.gguf").write_bytes(b"GGUF")
    (Path(settings.MODEL_IMPORT_DIR) / "notes.txt").write_text("not a model")
    html = staff.get("/admin/models/").content.decode()
    assert "sub/team.gguf" in html and "notes.txt" not in html


def test_estimate_for_a_file_in_the_import_folder(staff: Client, models_dir: Path, settings: Any) -> None:
    shutil.copy(SMOLLM, Path(settings.MODEL_IMPORT_DIR) / "smol.gguf")
    settings.ENGINE_MEMORY_BYTES = 8 << 30
    data = staff.post("/admin/models/estimate/", {"source": "smol.gguf", "parallel": "4", "context_length": "2048"}).json()
    assert data["status"] == "fits" and data["backend"] == "embedded"
    assert data["context_length"] == 2048 and data["parallel"] == 4
    assert data["weights_bytes"] == len(SMOLLM_BYTES)
    # SmolLM2-135M: 30 layers, 3 KV heads of 64 dims, f16 K and V: 23 040 bytes per token.
    assert data["kv_cache_bytes"] == 30 * 3 * 64 * 2 * 2 * 2048 * 4
    assert data["total_bytes"] == data["weights_bytes"] + data["kv_cache_bytes"] + data["overhead_bytes"]
    assert data["facts"]["parameter_size"] == "135M"


def test_estimate_for_a_url_reads_only_the_header(staff: Client, models_dir: Path, model_server: ModelServer, settings: Any) -> None:
    model_server.files["m.gguf"] = SMOLLM_BYTES
    settings.ENGINE_MEMORY_BYTES = 300 << 20
    data = staff.post("/admin/models/estimate/", {"source": model_server.url("m.gguf")}).json()
    assert data["status"] in ("fits", "fits_reduced", "does_not_fit")
    assert data["weights_bytes"] == len(SMOLLM_BYTES) and data["available_bytes"] == 300 << 20
    requested = 0
    for seen in model_server.seen:
        start, end = seen.range.removeprefix("bytes=").split("-")
        requested += int(end) - int(start) + 1
    assert requested < 8 << 20, "the estimate must not download the model"


def test_estimate_for_a_safetensors_repo_uses_its_config(staff: Client, models_dir: Path, model_server: ModelServer, settings: Any) -> None:
    config = {"model_type": "llama", "num_hidden_layers": 32, "hidden_size": 4096, "num_attention_heads": 32,
              "num_key_value_heads": 8, "max_position_embeddings": 8192}
    model_server.files["config.json"] = json.dumps(config).encode()
    model_server.files["model-00001-of-00002.safetensors"] = b"x" * 1000
    model_server.files["model-00002-of-00002.safetensors"] = b"x" * 2000
    model_server.repos["acme/llama"] = ["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    settings.GPU_MEMORY_BYTES = 24 << 30
    data = staff.post("/admin/models/estimate/", {"source": "hf.co/acme/llama", "parallel": "1"}).json()
    assert data["backend"] == "vllm" and data["available_bytes"] == 24 << 30
    assert data["weights_bytes"] == 3000
    assert data["kv_cache_bytes"] == 32 * 8 * 128 * 2 * 2 * 8192  # 1 GiB for one 8k chat
    settings.GPU_MEMORY_BYTES = 0
    unknown = staff.post("/admin/models/estimate/", {"source": "hf.co/acme/llama"}).json()
    assert unknown["status"] == "unknown" and "GPU_MEMORY_BYTES" in unknown["message"]


def test_estimate_refuses_unsafe_sources(staff: Client, models_dir: Path, settings: Any) -> None:
    settings.PULL_ALLOW_HOSTS = []
    response = staff.post("/admin/models/estimate/", {"source": "http://127.0.0.1:9/x.gguf"})
    assert response.status_code == 400 and "not allowed" in response.json()["error"]
    response = staff.post("/admin/models/estimate/", {"source": "../../etc/shadow.gguf"})
    assert response.status_code == 400 and "outside the import folder" in response.json()["error"]


def test_estimate_says_in_words_when_a_server_cannot_be_found_or_reached(staff: Client, models_dir: Path, settings: Any) -> None:
    settings.PULL_ALLOW_HOSTS = ["no-such-host.invalid", "127.0.0.1"]
    settings.PULL_ALLOW_PRIVATE = True
    unknown = staff.post("/admin/models/estimate/", {"source": "http://no-such-host.invalid/m.gguf"})
    assert unknown.status_code == 400
    assert unknown.json()["error"] == (
        "The server's name could not be found. Check the address, or whether this server can reach it."
        " (no-such-host.invalid)"
    )
    refused = staff.post("/admin/models/estimate/", {"source": "http://127.0.0.1:9/m.gguf"})
    assert refused.status_code == 400
    assert "Errno" not in refused.json()["error"]
    assert refused.json()["error"] == "The server refused the connection: nothing is listening at that address. (127.0.0.1)"


def test_table_fragment_is_the_table_alone(staff: Client, smollm: LLMModel) -> None:
    html = staff.get("/admin/models/table/").content.decode()
    assert html.lstrip().startswith('<div class="ma-table-wrap" id="models-table">')
    assert "smollm2:135m" in html and "<html" not in html


def test_page_has_no_inline_script_or_style(staff: Client, smollm: LLMModel) -> None:
    html = staff.get("/admin/models/").content.decode()
    assert "<style" not in html and " style=" not in html
    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag
