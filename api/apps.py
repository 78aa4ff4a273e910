from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "API"

    def ready(self) -> None:
        # Webhooks: connects the receivers of the ticket signals, and registers the Celery
        # tasks (workers run ready() too).
        from . import webhooks  # noqa: F401
