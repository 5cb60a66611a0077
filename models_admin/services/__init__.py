"""Writes to the model registry: models, pulls, vLLM endpoints. Every admin action is audited.

The web pages, the Ollama API and the Celery tasks all call these functions. Import them from
the module that holds them: ``errors`` (the shared exceptions and ``UserLike``), ``audit``,
``files``, ``registry``, ``pulls`` and ``endpoints``.
"""
