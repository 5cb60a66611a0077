"""The context a chat really gets is what the models page shows and what refusals cite, and
an administrator sets it per model."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser
from django.test import Client

from inference.engines import EngineError, embedded_engine
from inference.prompting import fit_context
from models_admin.models import AdminAction, LLMModel
from models_admin.selectors import chat_context, model_spec


@pytest.fixture
def staff(admin_user: AbstractUser) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def _context_cell(html: str, model: str) -> str:
    row = html[html.index(f'data-model="{model}"') :]
    row = row[: row.index("</tr>")]
    cells = row.split('class="num"')
    return cells[2]  # size, then context


def test_the_page_shows_the_context_a_chat_gets_not_the_trained_one(staff: Client, smollm: LLMModel, settings: Any) -> None:
    settings.EMBEDDED_CONTEXT = 3072
    assert smollm.context_length == 8192  # SmolLM2 was trained for 8,192 tokens
    cell = _context_cell(staff.get("/admin/models/").content.decode(), "smollm2:135m")
    assert ">3072<" in cell and "of 8192" in cell
    assert model_spec(smollm).context_length == 3072


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_admin_sets_the_context_per_model_and_refusals_cite_it(admin_user: AbstractUser, smollm: LLMModel) -> None:
    from asgiref.sync import sync_to_async

    client = Client()
    await sync_to_async(client.force_login)(admin_user)
    response = await sync_to_async(client.post)(f"/admin/models/{smollm.id}/context/", {"context_length": "1024"})
    assert response.status_code == 302
    model = await LLMModel.objects.aget(pk=smollm.pk)
    assert (model.parameters or {})["num_ctx"] == 1024
    assert await AdminAction.objects.filter(action="model.context", target="smollm2:135m").aexists()
    spec = await sync_to_async(model_spec)(model)
    assert spec.context_length == 1024 == await sync_to_async(chat_context)(model)
    with pytest.raises(EngineError) as refused:
        await fit_context(engine=embedded_engine(), spec=spec, messages=[{"role": "user", "content": "word " * 3000}], max_tokens=64)
    assert "holds 1024 tokens" in refused.value.message


def test_context_beyond_what_the_model_was_trained_for_is_refused(staff: Client, smollm: LLMModel) -> None:
    response = staff.post(f"/admin/models/{smollm.id}/context/", {"context_length": "9000"}, follow=True)
    assert "trained for at most 8192 tokens" in response.content.decode()
    smollm.refresh_from_db()
    assert "num_ctx" not in (smollm.parameters or {})


def test_only_staff_set_the_context(alice: AbstractUser, smollm: LLMModel) -> None:
    client = Client()
    client.force_login(alice)
    response = client.post(f"/admin/models/{smollm.id}/context/", {"context_length": "1024"})
    assert response.status_code == 404
    smollm.refresh_from_db()
    assert "num_ctx" not in (smollm.parameters or {})
