from django.apps import AppConfig


class MailgateConfig(AppConfig):
    name = "mailgate"
    verbose_name = "Mail gateway"

    def ready(self) -> None:
        # Mail out: connects the receivers of the ticket signals, and registers its Celery
        # tasks (autodiscovery imports only `mailgate/tasks.py`; workers run ready() too).
        from . import notifications  # noqa: F401
