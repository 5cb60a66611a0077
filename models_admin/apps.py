from django.apps import AppConfig


class ModelsAdminConfig(AppConfig):
    name = "models_admin"
    verbose_name = "Models"

    def ready(self) -> None:
        # Bind shared tasks to the project's Celery app in every process that enqueues them.
        import platform.celery  # noqa: F401

        from prometheus_client import REGISTRY

        from .metrics import ModelsCollector

        REGISTRY.register(ModelsCollector())
