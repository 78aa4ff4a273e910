"""`manage.py cron` runs the due jobs once; the purge job cleans up what nothing needs."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from mailgate.models import (
    InboundMessage,
    InboundStatus,
    OutboundMessage,
    OutboundStatus,
    TemplateCode,
)
from mailgate.services import inbound_receive
from sla import jobs
from sla.models import JobRun
from tests.tickets.factories import open_ticket
from tickets.services import AttachmentUpload

pytestmark = pytest.mark.django_db


def cron(*args: str) -> tuple[str, str, int]:
    out, err = StringIO(), StringIO()
    code = 0
    try:
        call_command("cron", *args, stdout=out, stderr=err)
    except CommandError as error:
        code = error.returncode
        err.write(str(error))
    return out.getvalue(), err.getvalue(), code


class TestCron:
    def test_runs_every_job_once_then_only_when_due(self, settings):
        out, _err, code = cron()
        assert code == 0
        for name in settings.CELERY_BEAT_SCHEDULE:
            assert f"{name}: done" in out
        out, _err, _code = cron()
        assert "sla-overdue-check: not due" in out
        with time_machine.travel(datetime.now(UTC) + timedelta(minutes=6)):
            out, _err, _code = cron()
        assert "sla-overdue-check: done" in out and "purge: not due" in out

    def test_a_failing_job_is_logged_and_the_others_run(self, settings, caplog):
        settings.CELERY_BEAT_SCHEDULE = {
            "broken": {"task": "sla.tests_broken_task_that_does_not_exist", "schedule": 60},
            "sla-auto-close": {"task": "sla.tasks.auto_close_task", "schedule": 3600},
        }
        out, err, code = cron()
        assert code == 1
        assert "broken: failed" in err and "sla-auto-close: done" in out
        assert "Scheduled job broken failed" in caplog.text
        broken = JobRun.objects.get(name="broken")
        assert not broken.succeeded and broken.error
        assert JobRun.objects.get(name="sla-auto-close").succeeded

    def test_runs_only_the_named_jobs(self):
        out, _err, _code = cron("ticket-locks-clear")
        assert out.strip() == "ticket-locks-clear: done (0)"
        assert cron("nope")[2] == 1


class TestPurge:
    def test_deletes_files_no_attachment_references_after_a_grace_period(
        self, department, settings
    ):
        # A storage of this test's own: other tests leave unreferenced files behind.
        settings.STORAGES = {**settings.STORAGES, "default": settings.STORAGES["default"].copy()}
        ticket = open_ticket(
            department=department,
            attachments=[AttachmentUpload(name="kept.txt", content=b"kept")],
        )
        kept = ticket.thread.entries.get().attachments.get().file.name
        orphan = default_storage.save(f"attachments/ab/cd/{'ab' * 32}", ContentFile(b"x"))
        assert jobs.purge()["attachment_files"] == 0  # too young
        counts = jobs.purge(now=datetime.now(UTC) + timedelta(days=2))
        assert counts["attachment_files"] == 1
        assert not default_storage.exists(orphan) and default_storage.exists(kept)

    def test_deletes_raw_mail_no_message_references_in_either_folder_layout(self, settings):
        settings.HELPDESK_MAIL_RAW_IN_ROW_MAX = 0  # raw mail in files
        settings.STORAGES = {**settings.STORAGES, "default": settings.STORAGES["default"].copy()}
        kept, _new = inbound_receive(raw=b"Subject: k\r\n\r\nK", mailbox=None, channel="pipe")
        by_day = default_storage.save(f"mail/2026/01/02/{'ab' * 32}.eml", ContentFile(b"x"))
        by_hash = default_storage.save(f"mail/cd/ef/{'cd' * 32}.eml", ContentFile(b"y"))
        counts = jobs.purge(now=datetime.now(UTC) + timedelta(days=2))
        assert counts["mail_files"] == 2
        assert not default_storage.exists(by_day) and not default_storage.exists(by_hash)
        assert default_storage.exists(kept.raw.name)

    def test_keeps_a_referenced_file_the_storage_renamed(self, settings):
        """Two saves of the same content at one moment: the storage names the second
        `<hash>_<random>`; a row referencing that hash keeps it."""
        settings.HELPDESK_MAIL_RAW_IN_ROW_MAX = 0  # raw mail in files
        settings.STORAGES = {**settings.STORAGES, "default": settings.STORAGES["default"].copy()}
        kept, _new = inbound_receive(raw=b"Subject: k\r\n\r\nK", mailbox=None, channel="pipe")
        renamed = default_storage.save(kept.raw.name, ContentFile(b"Subject: k\r\n\r\nK"))
        assert renamed != kept.raw.name
        assert jobs.purge(now=datetime.now(UTC) + timedelta(days=2))["mail_files"] == 0
        assert default_storage.exists(renamed) and default_storage.exists(kept.raw.name)

    def test_deletes_expired_sessions(self):
        store = SessionStore()
        store.set_expiry(-10)
        store.save()
        SessionStore().save()
        assert jobs.purge()["sessions"] == 1
        assert Session.objects.count() == 1

    def test_deletes_mail_logs_past_retention_but_keeps_failures_longer(self, settings):
        settings.HELPDESK_LOG_RETENTION_DAYS = 30
        settings.HELPDESK_MAIL_RAW_IN_ROW_MAX = 0  # raw mail in files
        old = datetime.now(UTC) - timedelta(days=40)
        processed, _new = inbound_receive(raw=b"Subject: a\r\n\r\nA", mailbox=None, channel="pipe")
        failed, _new = inbound_receive(raw=b"Subject: b\r\n\r\nB", mailbox=None, channel="pipe")
        fresh, _new = inbound_receive(raw=b"Subject: c\r\n\r\nC", mailbox=None, channel="pipe")
        InboundMessage.objects.filter(pk=processed.pk).update(
            status=InboundStatus.PROCESSED, received_at=old
        )
        InboundMessage.objects.filter(pk=failed.pk).update(
            status=InboundStatus.FAILED, received_at=old
        )
        InboundMessage.objects.filter(pk=fresh.pk).update(status=InboundStatus.PROCESSED)
        counts = jobs.purge(now=datetime.now(UTC) + timedelta(days=2))
        assert counts["inbound_messages"] == 1
        assert set(InboundMessage.objects.values_list("pk", flat=True)) == {failed.pk, fresh.pk}
        assert counts["mail_files"] == 1 and not default_storage.exists(processed.raw.name)

    def test_keeps_unsent_mail_whatever_its_age(self, department, settings):
        settings.HELPDESK_LOG_RETENTION_DAYS = 30
        ticket = open_ticket(department=department)
        common = {
            "ticket": ticket,
            "template": TemplateCode.TICKET_AUTORESP,
            "audience": "customer",
        }
        old = datetime.now(UTC) - timedelta(days=40)
        for status in (OutboundStatus.SENT, OutboundStatus.QUEUED):
            OutboundMessage.objects.create(
                **common, status=status, created_at=old, recipient="a@example.com"
            )
        assert jobs.purge()["outbound_messages"] == 1
        assert list(OutboundMessage.objects.values_list("status", flat=True)) == ["queued"]

    def test_zero_retention_keeps_logs_forever(self, settings):
        settings.HELPDESK_LOG_RETENTION_DAYS = 0
        message, _new = inbound_receive(raw=b"Subject: a\r\n\r\nA", mailbox=None, channel="pipe")
        InboundMessage.objects.filter(pk=message.pk).update(
            status=InboundStatus.PROCESSED, received_at=datetime(2000, 1, 1, tzinfo=UTC)
        )
        assert jobs.purge()["inbound_messages"] == 0
