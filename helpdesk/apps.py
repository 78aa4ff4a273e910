from django.apps import AppConfig


class HelpdeskConfig(AppConfig):
    name = "helpdesk"
    verbose_name = "Help desk"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks
        from .lib import querycache

        querycache.connect()
