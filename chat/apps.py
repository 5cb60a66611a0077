from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"

    def ready(self) -> None:
        from inference.signals import model_loading

        from .generation import hold_leases_through_load

        # A model load freezes this process: its running answers' leases are renewed first.
        model_loading.connect(hold_leases_through_load, dispatch_uid="chat.hold_leases_through_load")
