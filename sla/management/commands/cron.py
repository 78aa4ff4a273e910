"""`python manage.py cron`: run every scheduled job that is due, once (osTicket's cron).

For hosts without a Celery beat process: call it every minute or five from the system's
cron. The jobs and their intervals are the entries of CELERY_BEAT_SCHEDULE; a job is due
when its interval has passed since it last started here. Several cron processes at once
each claim a job with a conditional UPDATE, so a job runs once. A job that fails is logged
and the others still run; the exit status is then 1.
"""

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string

from sla.models import JobRun

logger = logging.getLogger("sla.cron")


def _interval(schedule: object) -> timedelta:
    if isinstance(schedule, timedelta):
        return schedule
    if isinstance(schedule, int | float):
        return timedelta(seconds=schedule)
    run_every = getattr(schedule, "run_every", None)  # celery.schedules.schedule
    if isinstance(run_every, timedelta):
        return run_every
    return timedelta(minutes=1)  # crontab entries: at most once a minute


class Command(BaseCommand):
    help = "Run each scheduled job that is due, once (for hosts without Celery beat)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--all", action="store_true", help="Run every job, due or not.")
        parser.add_argument("--list", action="store_true", help="List the jobs and stop.")
        parser.add_argument("jobs", nargs="*", help="Only these jobs (names as listed).")

    def handle(self, *args: Any, **options: Any) -> None:
        schedule = settings.CELERY_BEAT_SCHEDULE
        if options["list"]:
            for name, entry in schedule.items():
                self.stdout.write(f"{name}\t{_interval(entry['schedule'])}\t{entry['task']}")
            return
        unknown = sorted(set(options["jobs"]) - set(schedule))
        if unknown:
            raise CommandError(f"Unknown job(s): {', '.join(unknown)}")
        failed = []
        for name, entry in schedule.items():
            if options["jobs"] and name not in options["jobs"]:
                continue
            force = options["all"] or bool(options["jobs"])
            if not self._claim(name, _interval(entry["schedule"]), force=force):
                self.stdout.write(f"{name}: not due")
                continue
            if not self._run(name, entry["task"]):
                failed.append(name)
        if failed:
            raise CommandError(f"Failed: {', '.join(failed)}", returncode=1)

    def _claim(self, name: str, interval: timedelta, *, force: bool) -> bool:
        now = timezone.now()
        JobRun.objects.get_or_create(name=name)
        due = Q(started_at__isnull=True) | Q(started_at__lte=now - interval + timedelta(seconds=5))
        runs = JobRun.objects.filter(name=name)
        if not force:
            runs = runs.filter(due)
        return bool(runs.update(started_at=now))

    def _run(self, name: str, task_path: str) -> bool:
        try:
            result = import_string(task_path)()
        except Exception as error:
            logger.exception("Scheduled job %s failed", name)
            JobRun.objects.filter(name=name).update(
                finished_at=timezone.now(),
                succeeded=False,
                error=f"{type(error).__name__}: {error}",
            )
            self.stderr.write(f"{name}: failed: {type(error).__name__}: {error}")
            return False
        JobRun.objects.filter(name=name).update(
            finished_at=timezone.now(), succeeded=True, error=""
        )
        self.stdout.write(f"{name}: done ({result})" if result is not None else f"{name}: done")
        return True
