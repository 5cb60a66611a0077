"""Pulls refuse what they must refuse, through the service path an admin or the API uses:
traversal names, internal addresses (also behind a redirect), truncated and non-GGUF files,
oversized downloads. A refused pull leaves no model, no blob and no temporary file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser

from models_admin.models import AdminAction, LLMModel, Pull, PullStatus
from models_admin.services import registry
from models_admin.services.errors import ModelError
from models_admin.services.files import pull_temp_path
from models_admin.services.pulls import pull_run, pull_start

from .helpers import SMOLLM_BYTES, ModelServer

pytestmark = pytest.mark.django_db


def run(pull: Pull) -> Pull:
    """What the Celery task does, inline."""
    pull_run(pull_id=pull.id)
    pull.refresh_from_db()
    return pull


def assert_left_nothing(pull: Pull, models_dir: Path) -> None:
    assert not LLMModel.objects.filter(name=pull.model_name.split(":")[0]).exists()
    assert not pull_temp_path(pull).exists()
    assert not list((models_dir / "blobs").glob("*")) if (models_dir / "blobs").exists() else True


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd.gguf",
        "/etc/passwd",
        "/etc/../etc/passwd.gguf",
        "hf.co/../../secret:Q4_0",
        "hf.co/org/..:Q4_0",
        "hf.co/org/repo:../../x",
        "llama3:8b",  # the Ollama library: not a source this server can reach
        "",
    ],
)
def test_unsafe_or_unknown_sources_are_refused(admin_user: AbstractUser, models_dir: Path, name: str) -> None:
    with pytest.raises(ModelError) as refused:
        pull_start(actor=admin_user, name=name)
    assert refused.value.message
    assert not Pull.objects.exists()


@pytest.mark.parametrize("model_name", ["../evil", "a/../b", "/abs:latest", "x:../y", "name:", "a\\b"])
def test_traversal_model_names_are_refused(
    admin_user: AbstractUser, model_server: ModelServer, smollm: LLMModel, model_name: str
) -> None:
    model_server.files["m.gguf"] = SMOLLM_BYTES
    with pytest.raises(ModelError):
        pull_start(actor=admin_user, name=model_server.url("m.gguf"), model_name=model_name)
    with pytest.raises(ModelError):
        registry.model_copy(actor=admin_user, source=smollm.full_name, destination=model_name)
    with pytest.raises(ModelError):
        registry.model_create(actor=admin_user, name=model_name, from_=smollm.full_name)
    assert list(LLMModel.objects.values_list("name", flat=True)) == ["smollm2"]


def test_a_link_out_of_the_import_folder_is_refused(admin_user: AbstractUser, models_dir: Path, settings: Any, tmp_path: Path) -> None:
    outside = tmp_path / "secret.gguf"
    outside.write_bytes(SMOLLM_BYTES[:1000])
    (Path(settings.MODEL_IMPORT_DIR) / "link.gguf").symlink_to(outside)
    with pytest.raises(ModelError, match="outside the import folder"):
        pull_start(actor=admin_user, name="link.gguf")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/files/m.gguf",
        "http://169.254.169.254/latest/meta-data/iam/model.gguf",
        "http://[::1]:{port}/files/m.gguf",
        "http://[::ffff:127.0.0.1]:{port}/files/m.gguf",
        "http://[::ffff:169.254.169.254]/model.gguf",
        "http://localhost:{port}/files/m.gguf",
        "http://2130706433:{port}/files/m.gguf",  # 127.0.0.1 as one number
        "http://10.0.0.5/model.gguf",
        "file:///etc/passwd",
    ],
)
def test_internal_addresses_are_refused(admin_user: AbstractUser, models_dir: Path, settings: Any, url: str) -> None:
    settings.PULL_ALLOW_HOSTS = []
    with pytest.raises(ModelError) as refused:
        pull_start(actor=admin_user, name=url.format(port=8080))
    assert "not allowed" in refused.value.message or "not a" in refused.value.message
    assert not Pull.objects.exists()


def test_a_redirect_to_the_metadata_address_is_refused(admin_user: AbstractUser, models_dir: Path, model_server: ModelServer) -> None:
    model_server.redirects["/files/innocent.gguf"] = "http://169.254.169.254/latest/meta-data/"
    pull = run(pull_start(actor=admin_user, name=model_server.url("innocent.gguf")))
    assert pull.status == PullStatus.FAILED
    assert "169.254.169.254" in pull.error and "not allowed" in pull.error
    assert_left_nothing(pull, models_dir)


def test_a_redirect_to_loopback_on_another_port_is_refused(admin_user: AbstractUser, models_dir: Path, model_server: ModelServer) -> None:
    model_server.redirects["/files/innocent.gguf"] = "http://127.0.0.1:1/model.gguf"
    pull = run(pull_start(actor=admin_user, name=model_server.url("innocent.gguf")))
    assert pull.status == PullStatus.FAILED
    assert "127.0.0.1" in pull.error
    assert_left_nothing(pull, models_dir)


def test_a_truncated_gguf_is_rejected_with_a_clear_reason(admin_user: AbstractUser, models_dir: Path, model_server: ModelServer) -> None:
    model_server.files["cut.gguf"] = SMOLLM_BYTES[: len(SMOLLM_BYTES) // 2]
    pull = run(pull_start(actor=admin_user, name=model_server.url("cut.gguf")))
    assert pull.status == PullStatus.FAILED
    assert "not a usable GGUF model" in pull.error and "truncated" in pull.error
    assert_left_nothing(pull, models_dir)


def test_a_file_that_is_not_gguf_is_rejected(admin_user: AbstractUser, models_dir: Path, model_server: ModelServer) -> None:
    model_server.files["page.gguf"] = b"<html><body>Sign in to download</body></html>" * 100
    pull = run(pull_start(actor=admin_user, name=model_server.url("page.gguf")))
    assert pull.status == PullStatus.FAILED
    assert "Not a GGUF file" in pull.error
    assert_left_nothing(pull, models_dir)


def test_a_non_gguf_file_in_the_import_folder_is_rejected(admin_user: AbstractUser, models_dir: Path, settings: Any) -> None:
    (Path(settings.MODEL_IMPORT_DIR) / "notes.gguf").write_text("just some text")
    pull = run(pull_start(actor=admin_user, name="notes.gguf"))
    assert pull.status == PullStatus.FAILED
    assert "Not a GGUF file" in pull.error
    assert_left_nothing(pull, models_dir)


def test_a_download_over_the_size_cap_is_refused_before_downloading(
    admin_user: AbstractUser, models_dir: Path, model_server: ModelServer, settings: Any
) -> None:
    model_server.files["m.gguf"] = SMOLLM_BYTES
    settings.PULL_MAX_BYTES = 10_000_000
    pull = run(pull_start(actor=admin_user, name=model_server.url("m.gguf")))
    assert pull.status == PullStatus.FAILED
    assert "over the limit" in pull.error
    # Only the size probe reached the server, never a full download.
    assert all(seen.range.startswith("bytes=0-0") for seen in model_server.seen if seen.path == "/files/m.gguf")
    assert_left_nothing(pull, models_dir)


def test_not_enough_disk_space_is_refused(admin_user: AbstractUser, models_dir: Path, model_server: ModelServer, settings: Any) -> None:
    model_server.files["m.gguf"] = SMOLLM_BYTES
    settings.PULL_DISK_RESERVE_BYTES = 1 << 60
    pull = run(pull_start(actor=admin_user, name=model_server.url("m.gguf")))
    assert pull.status == PullStatus.FAILED
    assert "Not enough disk space" in pull.error


def test_a_missing_file_fails_with_the_server_answer(admin_user: AbstractUser, models_dir: Path, model_server: ModelServer) -> None:
    pull = run(pull_start(actor=admin_user, name=model_server.url("nothing-here.gguf")))
    assert pull.status == PullStatus.FAILED
    assert "404" in pull.error


def test_refusals_and_starts_are_audited(admin_user: AbstractUser, models_dir: Path, model_server: ModelServer) -> None:
    model_server.files["m.gguf"] = SMOLLM_BYTES
    pull = pull_start(actor=admin_user, name=model_server.url("m.gguf"))
    action = AdminAction.objects.get(action="pull.start")
    assert (action.actor, action.actor_name, action.target) == (admin_user, "admin", pull.source)
    assert action.details["pull"] == pull.id
