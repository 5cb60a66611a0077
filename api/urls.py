"""Ollama- and OpenAI-compatible API routes, also under the ``/u/<key>/`` prefix.

API routes match with or without a trailing slash (never a redirect: clients do not follow
them on POST). Unknown paths under /api/ and /v1/ answer 404 in the protocol's JSON shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.urls import URLPattern, re_path

from . import views
from . import manage, ollama, openai

# The key in /u/<key>/: the secret's own alphabet, so nothing else is taken for a key.
_KEY = r"u/(?P<key>[A-Za-z0-9_-]+)/"

_API_ROUTES: list[tuple[str, Callable[..., Any], str]] = [
    (r"api/version", ollama.version, "api-version"),
    (r"api/tags", ollama.tags, "api-tags"),
    (r"api/show", ollama.show, "api-show"),
    (r"api/ps", ollama.ps, "api-ps"),
    (r"api/chat", ollama.chat, "api-chat"),
    (r"api/generate", ollama.generate, "api-generate"),
    (r"api/embed", ollama.embed, "api-embed"),
    (r"api/embeddings", ollama.embeddings, "api-embeddings"),
    (r"api/pull", manage.pull, "api-pull"),
    (r"api/delete", manage.delete, "api-delete"),
    (r"api/copy", manage.copy, "api-copy"),
    (r"api/create", manage.create, "api-create"),
    (r"v1/models", openai.models, "v1-models"),
    (r"v1/models/(?P<model_id>.+?)", openai.model_detail, "v1-model"),
    (r"v1/chat/completions", openai.chat_completions, "v1-chat-completions"),
    (r"v1/completions", openai.completions, "v1-completions"),
    (r"v1/embeddings", openai.embeddings, "v1-embeddings"),
]


def _api_patterns() -> list[URLPattern]:
    patterns = []
    for route, view, name in _API_ROUTES:
        patterns.append(re_path(rf"^{route}/?$", view, name=name))
        patterns.append(re_path(rf"^{_KEY}{route}/?$", view, name=f"{name}-keyed"))
    return patterns


urlpatterns = [
    *_api_patterns(),
    re_path(rf"^{_KEY}?$", views.keyed_root, name="keyed-root"),
    re_path(rf"^(?:{_KEY})?(?P<protocol>api|v1)/", views.api_not_found),
]
