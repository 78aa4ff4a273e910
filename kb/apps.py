from django.apps import AppConfig


class KbConfig(AppConfig):
    name = "kb"
    verbose_name = "Knowledge base"

    def ready(self) -> None:
        from tickets.signals import ticket_created

        from . import receivers

        ticket_created.connect(receivers.ticket_filed, dispatch_uid="kb_deflections_filed")
