"""First-run set-up: the bundled model, the configured vLLM model, the first admin.

It lives in ``chat``, the top layer, because it touches every layer below (models,
conversations left generating, accounts)."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from chat.services import messages_interrupted
from models_admin.services.registry import (
    bundled_embedding_model_install,
    bundled_model_install,
    install_import_dir,
    vllm_model_register,
)


class Command(BaseCommand):
    help = "Install the bundled model, register the vLLM model, create the first admin account."

    def handle(self, *args: Any, **options: Any) -> None:
        model = bundled_model_install()
        self.stdout.write(f"Model ready: {model.full_name} ({model.file_path})")
        embedder = bundled_embedding_model_install()
        self.stdout.write(f"Embedding model ready: {embedder.full_name}")
        self.stdout.write(f"Import folder for GGUF files: {install_import_dir()}")
        if settings.VLLM_URL and settings.VLLM_MODEL:
            served = vllm_model_register(served_name=settings.VLLM_MODEL, context_length=settings.VLLM_CONTEXT)
            self.stdout.write(f"vLLM model registered: {served.full_name} at {settings.VLLM_URL}")
        interrupted = len(messages_interrupted())
        if interrupted:
            self.stdout.write(f"Marked {interrupted} answer(s) interrupted by the last shutdown.")
        self._first_admin()

    def _first_admin(self) -> None:
        User = get_user_model()
        username = settings.PLATFORM_ADMIN_USER
        if User.objects.filter(username=username).exists():
            return
        password = settings.PLATFORM_ADMIN_PASSWORD
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        if generated:
            self.stdout.write(self.style.WARNING(f"Created admin account '{username}' with password: {password}"))
            self.stdout.write("This password is shown once. Change it after signing in.")
        else:
            self.stdout.write(f"Created admin account '{username}' (password from PLATFORM_ADMIN_PASSWORD).")
