"""Custom models (Ollama's Modelfile) from the admin form and from ``model_create``: their
system prompt, parameters and chat template reach the engine, observed in llama.cpp itself
(its /slots and /props, the prompt tokens it counts, and deterministic output)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.contrib.auth.models import AbstractUser
from django.test import Client

from chat.services import conversation_create
from inference.engines import embedded_engine
from models_admin.models import AdminAction, LLMModel
from models_admin.selectors import model_spec
from models_admin.services.errors import ModelError
from models_admin.services.registry import model_create
from tests.chat.helpers import connect, receive_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

# Long enough that the tokens it adds to every prompt cannot be noise.
HANDBOOK = " ".join(["Acme support handbook rule: answer customers politely, cite ticket numbers, never promise refunds."] * 12)

TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


async def chat(user: AbstractUser, model_name: str, text: str, *, while_running: Any = None) -> dict[str, Any]:
    conversation = await database_sync_to_async(conversation_create)(owner=user, model_name=model_name)
    socket, connected = await connect(user, conversation.id)
    assert connected
    await socket.send_json_to({"type": "send", "content": text, "model": model_name})
    observed = None
    if while_running is not None:
        await receive_until(socket, "delta")
        observed = await while_running()
        await socket.send_json_to({"type": "stop"})  # seen what we came for; no need to wait
    done, _events = await receive_until(socket, "done", timeout=120)
    await socket.disconnect()
    done["observed"] = observed
    return done


async def processing_slot_params(model: LLMModel) -> dict[str, Any]:
    spec = await database_sync_to_async(model_spec)(model)
    url = embedded_engine().loaded_url(spec)
    assert url
    async with httpx.AsyncClient() as client:
        slots = (await client.get(url + "/slots")).json()
    busy = [slot for slot in slots if slot["is_processing"]]
    assert busy, "a request should be running in the engine"
    return dict(busy[0]["params"], n_prompt_tokens=busy[0]["n_prompt_tokens"])


async def answer_tokens(done: dict[str, Any]) -> int:
    from chat.models import Message

    return (await Message.objects.aget(pk=done["id"])).prompt_tokens


async def test_custom_model_from_the_form_reaches_the_engine(
    admin_user: AbstractUser, alice: AbstractUser, smollm: LLMModel, settings: Any
) -> None:
    settings.DEFAULT_MAX_TOKENS = 300
    client = Client()
    await sync_to_async(client.force_login)(admin_user)
    response = await sync_to_async(client.post)(
        "/admin/models/create/",
        {
            "name": "support-bot",
            "base": "smollm2:135m",
            "system": HANDBOOK,
            "temperature": "0.37",
            "top_k": "7",
            "seed": "4242",
            "repeat_penalty": "1.15",
            "stop": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    model = await LLMModel.objects.aget(name="support-bot", tag="latest")
    assert model.base_id == smollm.pk and model.system_prompt == HANDBOOK
    assert model.parameters == {"temperature": 0.37, "top_k": 7, "seed": 4242, "repeat_penalty": 1.15}
    assert await AdminAction.objects.filter(action="model.create", target="support-bot:latest", actor=admin_user).aexists()

    done = await chat(alice, "support-bot", "Write a long story about a lighthouse.", while_running=lambda: processing_slot_params(model))
    params = done["observed"]
    assert params["seed"] == 4242 and params["top_k"] == 7
    assert params["temperature"] == pytest.approx(0.37, abs=1e-4)
    assert params["repeat_penalty"] == pytest.approx(1.15, abs=1e-4)
    assert done["status"] in ("complete", "stopped")

    # The system prompt is in what the engine read: compare with the base model's prompt.
    settings.DEFAULT_MAX_TOKENS = 4
    base = await chat(alice, "smollm2:135m", "Hi.")
    custom = await chat(alice, "support-bot", "Hi.")
    assert await answer_tokens(custom) > await answer_tokens(base) + 150


async def test_modelfile_parameters_change_the_answer_deterministically(
    admin_user: AbstractUser, alice: AbstractUser, smollm: LLMModel, settings: Any
) -> None:
    settings.DEFAULT_MAX_TOKENS = 200
    create = database_sync_to_async(model_create)
    await create(actor=admin_user, name="greedy", modelfile="FROM smollm2:135m\nPARAMETER temperature 0\nPARAMETER num_predict 40\n")
    first = await chat(alice, "greedy", "List five fruits.")
    again = await chat(alice, "greedy", "List five fruits.")
    assert first["content"] == again["content"], "temperature 0 should be deterministic"
    words = first["content"].split()
    assert len(words) >= 8, first["content"]
    cut = words[len(words) // 2]
    expected = first["content"][: first["content"].index(cut)]

    modelfile = f'''
# Same as greedy, but stop at a word the answer is known to contain.
FROM greedy
PARAMETER stop "{cut}"
'''
    stopping = await create(actor=admin_user, name="greedy-stop:v1", modelfile=modelfile)
    assert stopping.parameters == {"temperature": 0.0, "num_predict": 40, "stop": [cut]}
    assert stopping.max_tokens == 40
    stopped = await chat(alice, "greedy-stop:v1", "List five fruits.")
    assert stopped["content"] == expected.rstrip() or stopped["content"] == expected
    assert len(stopped["content"]) < len(first["content"])


async def test_modelfile_system_and_template_reach_llama_cpp(
    admin_user: AbstractUser, alice: AbstractUser, smollm: LLMModel, settings: Any
) -> None:
    settings.DEFAULT_MAX_TOKENS = 4
    modelfile = f'FROM smollm2:135m\nSYSTEM """{HANDBOOK}"""\nTEMPLATE """{TEMPLATE}"""\nPARAMETER num_ctx 2048\n'
    model = await database_sync_to_async(model_create)(actor=admin_user, name="templated", modelfile=modelfile)
    assert model.template == TEMPLATE and model.system_prompt == HANDBOOK
    done = await chat(alice, "templated", "Hi.")
    assert done["status"] == "complete", done

    spec = await database_sync_to_async(model_spec)(model)
    base_spec = await database_sync_to_async(model_spec)(smollm)
    assert spec.context_length == 2048
    url = embedded_engine().loaded_url(spec)
    assert url and url != embedded_engine().loaded_url(base_spec), "a custom template needs its own llama.cpp instance"
    async with httpx.AsyncClient() as client:
        props = (await client.get(url + "/props")).json()
    assert props["chat_template"] == TEMPLATE
    # Our template has no default system prompt, so the handbook is most of the prompt.
    assert await answer_tokens(done) > 200
    await asyncio.to_thread(embedded_engine().unload, spec)


async def test_bad_modelfiles_are_refused_with_a_reason(admin_user: AbstractUser, smollm: LLMModel) -> None:
    create = database_sync_to_async(model_create)
    cases = {
        "PARAMETER temperature 0.2\n": "base model",
        "FROM smollm2:135m\nPARAMETER temprature 0.2\n": "Unknown parameter 'temprature'",
        "FROM smollm2:135m\nPARAMETER top_p 7\n": "top_p",
        "FROM smollm2:135m\nADAPTER ./lora.gguf\n": "ADAPTER",
        'FROM smollm2:135m\nSYSTEM """never closed\n': "never closed",
        "FROM smollm2:135m\nTEMPLATE {{ .Prompt }}\n": "Jinja",
        "FROM ./weights.gguf\n": "import the file first",
        "FROM smollm2:135m\nPARAMETER num_ctx lots\n": "num_ctx",
        # Chat templates are rendered on a sample chat when saved, not when someone chats.
        'FROM smollm2:135m\nTEMPLATE """{% for m in messages %}{{ m.content }}\n"""\n': "error on line 1",
        'FROM smollm2:135m\nTEMPLATE """{{ messages | nosuchfilter }}"""\n': "nosuchfilter",
        'FROM smollm2:135m\nTEMPLATE """{% for m in messages %}{{ m.role }}{% endfor %}"""\n': "leaves out the messages' text",
        'FROM smollm2:135m\nTEMPLATE """{{ raise_exception(\'System role not supported\') }}"""\n': "System role not supported",
        'FROM smollm2:135m\nTEMPLATE """{{ messages.__class__.__mro__ }}"""\n': "fails on an ordinary chat",
        # Loops for ever without writing anything: the check's child process is stopped.
        'FROM smollm2:135m\nTEMPLATE """{% set r = range(100000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}"""\n': "did not finish",
    }
    for modelfile, reason in cases.items():
        with pytest.raises(ModelError) as refused:
            await create(actor=admin_user, name="x", modelfile=modelfile)
        assert reason in refused.value.message, (modelfile, refused.value.message)
    with pytest.raises(ModelError):
        await create(actor=admin_user, name="smollm2:135m", from_="smollm2:135m", system="loop")
    assert not await LLMModel.objects.filter(name="x").aexists()
