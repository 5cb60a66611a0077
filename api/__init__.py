"""The Ollama-compatible (``/api/*``) and OpenAI-compatible (``/v1/*``) HTTP API.

Both protocols share one path through the platform: key authentication (``endpoint``),
request schemas (``schemas``), the engine call with the model's ceilings and system prompt
(``generation``) and the streaming transports (``streaming``). ``ollama`` and ``openai`` only
translate between their wire format and that shared core.
"""
