from django.apps import AppConfig


class HelpdeskConfig(AppConfig):
    name = "helpdesk"
    verbose_name = "Help desk"

    def ready(self) -> None:
        from django.core.signals import request_finished, request_started

        from . import checks  # noqa: F401 - registers the system checks
        from .lib import memo, querycache

        querycache.connect()
        request_started.connect(memo.tokens_snapshot_begin, dispatch_uid="helpdesk.tokens.begin")
        request_finished.connect(memo.tokens_snapshot_end, dispatch_uid="helpdesk.tokens.end")
