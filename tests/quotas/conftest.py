"""The API suite's fixtures (a live platform, the official clients) for the quota tests."""

from tests.api.conftest import ollama_client, openai_client, server

__all__ = ["ollama_client", "openai_client", "server"]
