"""Generated hostile bodies at the Ollama and OpenAI routes of the live platform (daphne).

Every answer is below 500, every refusal is in its protocol's error shape, nothing is logged
as a failure, and afterwards a normal request still gets its answer. Answers stay short:
the model's row caps every answer at two tokens, whatever a body asks for.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import AbstractUser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.services import api_key_create
from models_admin.models import LLMModel
from tests.conftest import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "smollm2:135m"
HI = [{"role": "user", "content": "hi"}]

# A valid, short request per route; the fuzzing starts from these.
ROUTES: dict[str, tuple[str, dict[str, Any]]] = {
    "/api/chat": ("ollama", {"model": MODEL, "messages": HI, "stream": False, "options": {"num_predict": 1}}),
    "/api/generate": ("ollama", {"model": MODEL, "prompt": "hi", "stream": False, "options": {"num_predict": 1}}),
    "/api/show": ("ollama", {"model": MODEL}),
    "/api/embed": ("ollama", {"model": MODEL, "input": "hi"}),
    "/v1/chat/completions": ("openai", {"model": MODEL, "messages": HI, "max_tokens": 1}),
    "/v1/completions": ("openai", {"model": MODEL, "prompt": "hi", "max_tokens": 1}),
}

# Every field a client of either protocol may send (and some nobody should).
FIELDS = [
    "model", "name", "messages", "prompt", "system", "template", "suffix", "raw", "images", "stream", "options",
    "keep_alive", "format", "tools", "tool_choice", "think", "context", "input", "truncate", "dimensions", "verbose",
    "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "min_p", "stop", "seed", "n",
    "presence_penalty", "frequency_penalty", "repeat_penalty", "logprobs", "response_format", "stream_options",
    "encoding_format", "user", "echo", "best_of",
]
OPTION_FIELDS = ["num_predict", "temperature", "top_p", "top_k", "min_p", "repeat_penalty", "seed", "stop", "num_ctx", "mirostat"]
MESSAGE_FIELDS = ["role", "content", "images", "tool_calls", "name"]

# Written into the body's text in place of a marker string: not what json.dumps writes, or
# deeper than it can (json.dumps recurses, and gives up at about a thousand levels).
LITERALS = ["1e999", "-1e999", "NaN", "Infinity", "9" * 5000, "1" + "0" * 400, "-0", "1E+2", "1.5e-400", '"\\ud800"',
            '"\\udfff\\ud800"', '"a\\u0000b"', *("[" * depth + "1" + "]" * depth for depth in (33, 300, 3_000, 100_000))]
MARKER = "\x1f-literal-"

text_with_surrogates = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([-1, -2, 0, 2**31, 2**63, -(2**63) - 1, 10**30])
    | st.floats()
    | text_with_surrogates
    | st.sampled_from(["", " ", "user", "system", "assistant", "tool", MODEL, "smollm2", "x" * 10_000, "5m", "-1", "\x00"])
    | st.sampled_from(LITERALS).map(lambda literal: MARKER + literal)
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10) | st.sampled_from(FIELDS), children, max_size=4),
    max_leaves=12,
)


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """The route's valid request with one field (or a message's or an option's) made hostile."""
    body = json.loads(json.dumps(base))
    where = draw(st.sampled_from(["field", "field", "message", "option", "drop"]))
    if where == "field":
        body[draw(st.sampled_from(FIELDS))] = draw(json_values)
    elif where == "message":
        message: dict[str, Any] = dict(HI[0])
        message[draw(st.sampled_from(MESSAGE_FIELDS))] = draw(json_values)
        body["messages"] = draw(st.sampled_from([[message], [HI[0], message], message]))
    elif where == "option":
        body["options"] = {draw(st.sampled_from(OPTION_FIELDS)): draw(json_values)}
    else:
        body.pop(draw(st.sampled_from(sorted(body))), None)
    return body


_MARKED = {ascii_only: [(json.dumps(MARKER + literal, ensure_ascii=ascii_only), literal) for literal in LITERALS] for ascii_only in (True, False)}


def _text(value: Any, ascii_only: bool) -> str:
    text = json.dumps(value, ensure_ascii=ascii_only)
    if "\\u001f" in text:  # json.dumps escapes the marker's control character
        for marked, literal in _MARKED[ascii_only]:
            text = text.replace(marked, literal)
    return text


@st.composite
def bodies(draw: st.DrawFn, base: dict[str, Any]) -> bytes:
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "json", "bytes", "deep", "surrogate"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "deep":
        depth = draw(st.sampled_from([100, 1_000, 100_000]))
        inner = draw(st.sampled_from(["[" * depth + "]" * depth, "[" * depth, '{"a":' * depth + "1" + "}" * depth]))
        return draw(st.sampled_from([inner, json.dumps({**base, "messages": "@"}).replace('"@"', inner)])).encode()
    if kind == "surrogate":
        where = draw(st.sampled_from(["model", "key", "content"]))
        lone = draw(st.sampled_from(["\\ud800", "\\udc00", "\\udbff\\u0041", "\\ude00\\ud83d"]))
        if where == "model":
            text = json.dumps({**base, "model": "@"}).replace('"@"', f'"{lone}"')
        elif where == "key":
            text = json.dumps({**base, "@": 1}).replace('"@"', f'"{lone}"')
        else:
            text = json.dumps({**base, "messages": [{"role": "user", "content": "@"}], "prompt": "@", "input": "@"})
            text = text.replace('"@"', f'"{lone}"')
        if draw(st.booleans()):
            return text.encode()  # as a JSON escape: valid UTF-8, a lone surrogate once decoded
        # Written out as the surrogate's own (invalid, CESU-style) UTF-8 bytes.
        return text.replace(lone, json.loads(f'"{lone}"')).encode("utf-8", "surrogatepass")
    value: Any
    if kind == "mutated":
        value = draw(mutated(base))
    else:
        value = draw(json_values)
    ascii_only = draw(st.booleans())
    return _text(value, ascii_only).encode("utf-8", "surrogatepass")


def assert_protocol_error(protocol: str, response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("application/json"), response.text[:200]
    body = response.json()
    if protocol == "ollama":
        assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"], body
    else:
        error = body["error"]
        assert set(body) == {"error"} and set(error) == {"message", "type", "param", "code"}, body
        assert isinstance(error["message"], str) and error["message"] and isinstance(error["type"], str), body
        assert error["param"] is None or isinstance(error["param"], str), body
        assert error["code"] is None or isinstance(error["code"], str), body


def assert_answer_is_sane(response: httpx.Response) -> None:
    """A 200 may stream; a stream that fails says so on its last line, never 'internal error'."""
    assert "internal error" not in response.text, response.text[-300:]


@pytest.fixture
def short_model(smollm: LLMModel) -> LLMModel:
    smollm.max_tokens = 2
    smollm.save(update_fields=["max_tokens"])
    return smollm


@pytest.fixture
def api(live_platform: LiveServer, alice: AbstractUser, short_model: LLMModel) -> Iterator[httpx.Client]:
    key = api_key_create(user=alice, name="fuzz")[1]
    with httpx.Client(
        base_url=live_platform.url, headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}, timeout=60
    ) as client:
        yield client


@pytest.mark.parametrize("route", list(ROUTES))
def test_generated_bodies_never_get_a_500(api: httpx.Client, live_platform: LiveServer, route: str) -> None:
    protocol, base = ROUTES[route]
    log_start = len(live_platform.logs())
    seen: dict[int, int] = {}

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(body=bodies(base))
    def post(body: bytes) -> None:
        response = api.post(route, content=body)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500, (body[:300], response.status_code, response.text[:300])
        if response.status_code >= 400:
            assert_protocol_error(protocol, response)
        else:
            assert_answer_is_sane(response)

    post()
    assert sum(seen.values()) >= 60 and any(status >= 400 for status in seen), seen
    log = live_platform.logs()[log_start:]
    assert "Traceback" not in log and " failed" not in log, log[-2000:]
    # And the route still answers a normal request.
    response = api.post(route, json=base)
    if route == "/api/embed":  # the bundled chat model has no embeddings: a clean 400
        assert response.status_code == 400 and "embed" in response.json()["error"]
    else:
        assert response.status_code == 200, response.text[:300]


@pytest.mark.parametrize(
    ("route", "raw"),
    [
        ("/api/chat", b"[" * 100_000 + b"]" * 100_000),
        ("/v1/chat/completions", b"[" * 100_000 + b"]" * 100_000),
        ("/api/chat", ('{"model": "' + MODEL + '", "messages": [{"role": "user", "content": "\\ud800"}]}').encode()),
        ("/v1/chat/completions", ('{"model": "' + MODEL + '", "messages": [{"role": "user", "content": "\\ud800"}]}').encode()),
        ("/api/chat", ('{"model": "' + MODEL + '", "messages": [{"role": "user", "content": "\xed\xa0\x80"}]}').encode("latin-1")),
        ("/api/generate", ('{"model": "' + MODEL + '", "prompt": "hi", "options": {"num_predict": 1e999}}').encode()),
        ("/v1/completions", ('{"model": "' + MODEL + '", "prompt": "hi", "max_tokens": ' + "9" * 5000 + "}").encode()),
        ("/api/show", b'{"model": "a\\u0000b"}'),
        ("/v1/chat/completions", b'{"model": "a\\u0000b", "messages": [{"role": "user", "content": "hi"}]}'),
        ("/api/embed", b"\xff\xfe{}"),
    ],
    ids=["deep-ollama", "deep-openai", "surrogate-ollama", "surrogate-openai", "cesu-bytes", "1e999", "5000-digits", "nul-show", "nul-openai", "utf16-bom"],
)
def test_named_hostile_bodies_get_a_400_in_the_protocols_shape(api: httpx.Client, route: str, raw: bytes) -> None:
    protocol, _base = ROUTES[route]
    response = api.post(route, content=raw)
    assert response.status_code in (400, 404), (response.status_code, response.text[:300])
    assert_protocol_error(protocol, response)
