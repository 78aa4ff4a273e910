"""The Celery app. Tasks live in each app's `tasks.py`; the schedule is CELERY_BEAT_SCHEDULE."""

import os
from pathlib import Path

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings.base")

app = Celery("helpdesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _make_filesystem_broker_folders(sender: Celery, **kwargs: object) -> None:
    # The filesystem transport (the no-server default) needs its folders to exist.
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        folder = (sender.conf.broker_transport_options or {}).get(key)
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)


@worker_init.connect
def _refuse_to_start_without_a_secret_key(**kwargs: object) -> None:
    # Celery logs and ignores exceptions from signal handlers: leave explicitly.
    from helpdesk.startup import MISSING_SECRET_KEY, secret_key_is_set

    if not secret_key_is_set():
        raise SystemExit(f"helpdesk: {MISSING_SECRET_KEY}")


@worker_init.connect
def _warm(**kwargs: object) -> None:
    from helpdesk.startup import worker_warm

    worker_warm()
