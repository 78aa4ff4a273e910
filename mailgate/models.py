"""Mailboxes we read, and every message that arrived, stored raw before it is processed."""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from helpdesk.lib.models import TimeStampedModel


class Mailbox(TimeStampedModel):
    """An address customers write to, and how to fetch its mail (IMAP or POP3)."""

    class Protocol(models.TextChoices):
        IMAP = "imap", "IMAP"
        POP3 = "pop3", "POP3"
        PIPE = "pipe", _("Piped by the mail server")

    class Security(models.TextChoices):
        SSL = "ssl", _("SSL/TLS")
        STARTTLS = "starttls", "STARTTLS"
        NONE = "none", _("None (loopback only)")

    class AfterFetch(models.TextChoices):
        DELETE = "delete", _("Delete")
        MOVE = "move", _("Move to a folder")
        MARK_SEEN = "seen", _("Mark as read")

    name = models.CharField(_("name"), max_length=128, unique=True)
    email = models.EmailField(_("address"), unique=True)
    protocol = models.CharField(
        _("protocol"), max_length=8, choices=Protocol, default=Protocol.IMAP
    )
    host = models.CharField(_("server"), max_length=255, blank=True)
    port = models.PositiveIntegerField(_("port"), null=True, blank=True)
    security = models.CharField(_("security"), max_length=8, choices=Security, default=Security.SSL)
    username = models.CharField(_("user name"), max_length=255, blank=True)
    # Write-only in every form and API: never shown back after saving.
    password = models.CharField(_("password"), max_length=255, blank=True)
    folder = models.CharField(_("folder"), max_length=255, default="INBOX")
    after_fetch = models.CharField(
        _("after fetching"), max_length=8, choices=AfterFetch, default=AfterFetch.MARK_SEEN
    )
    move_to_folder = models.CharField(_("move to folder"), max_length=255, blank=True)
    batch_size = models.PositiveIntegerField(_("messages per run"), default=50)
    department = models.ForeignKey(
        "routing.Department", models.PROTECT, null=True, blank=True, related_name="mailboxes"
    )
    help_topic = models.ForeignKey(
        "routing.HelpTopic", models.PROTECT, null=True, blank=True, related_name="mailboxes"
    )
    priority = models.ForeignKey(
        "tickets.Priority", models.PROTECT, null=True, blank=True, related_name="mailboxes"
    )
    is_active = models.BooleanField(_("active"), default=True)
    max_failures = models.PositiveIntegerField(
        _("disable after failures"), default=5, help_text=_("Consecutive failed fetches.")
    )
    error_count = models.PositiveIntegerField(_("consecutive failures"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    last_error_at = models.DateTimeField(_("last error at"), null=True, blank=True)
    last_fetched_at = models.DateTimeField(_("last fetched"), null=True, blank=True)

    class Meta:
        verbose_name = _("mailbox")
        verbose_name_plural = _("mailboxes")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(email=Lower("email")), name="mailbox_email_lower"),
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


class InboundStatus(models.TextChoices):
    RECEIVED = "received", _("Received, not yet processed")
    PROCESSED = "processed", _("Processed")
    IGNORED = "ignored", _("Ignored")
    FAILED = "failed", _("Failed")


class InboundMessage(models.Model):
    """One raw message as it arrived, saved before anything else happens to it.

    `source_key` (the mailbox, or the pipe, plus the SHA-256 of the bytes) makes a re-fetch or
    re-pipe of the same message find this row instead of making a second one."""

    mailbox = models.ForeignKey(
        Mailbox, models.SET_NULL, null=True, blank=True, related_name="messages"
    )
    channel = models.CharField(_("channel"), max_length=8, choices=Mailbox.Protocol)
    source_key = models.CharField(max_length=96, editable=False)  # unique: see Meta
    remote_id = models.CharField(_("UID"), max_length=255, blank=True)
    content_hash = models.CharField(_("SHA-256"), max_length=64)
    # The bytes as they arrived: in the row up to HELPDESK_MAIL_RAW_IN_ROW_MAX (a file of
    # their own would cost a file creation per message, a request per message on S3), else
    # in a file (`raw`). `raw_read()` reads either.
    raw = models.FileField(_("raw message"), max_length=255, blank=True)
    raw_data = models.BinaryField(_("raw message"), null=True, editable=False)
    size = models.PositiveBigIntegerField(_("size"))
    message_id = models.CharField(_("Message-ID"), max_length=255, blank=True)
    # The Message-ID once this mail has written into a thread (a ticket, a message, a
    # response), else null. Unique: of two copies of one mail processed at the same moment
    # through two mailboxes, the second cannot record its outcome and becomes a duplicate.
    # Null, not "", for none: every other mail would clash on "".
    thread_message_id = models.CharField(  # noqa: DJ001
        max_length=255, null=True, editable=False
    )
    from_email = models.EmailField(_("from"), blank=True)
    subject = models.CharField(_("subject"), max_length=255, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=InboundStatus, default=InboundStatus.RECEIVED
    )
    # What processing decided, in a word (created, message, response, duplicate, auto_reply,
    # bounce, loop), and why it failed when it did.
    outcome = models.CharField(_("outcome"), max_length=32, blank=True)
    error = models.TextField(_("error"), blank=True)
    notes = models.JSONField(_("notes"), default=list, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    ticket = models.ForeignKey(
        "tickets.Ticket", models.SET_NULL, null=True, blank=True, related_name="inbound_messages"
    )
    entry = models.ForeignKey(
        "tickets.ThreadEntry", models.SET_NULL, null=True, blank=True, related_name="+"
    )
    received_at = models.DateTimeField(_("received"), auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)

    class Meta:
        verbose_name = _("inbound message")
        verbose_name_plural = _("inbound messages")
        ordering = ["-received_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=InboundStatus.values), name="inbound_status_valid"
            ),
            # Constraints rather than unique=True, which on PostgreSQL adds a second index
            # for LIKE queries to each: these keys are only ever compared whole.
            models.UniqueConstraint(fields=["source_key"], name="inbound_source_key_unique"),
            models.UniqueConstraint(
                fields=["thread_message_id"], name="inbound_thread_message_id_unique"
            ),
        ]
        indexes = [
            # Admins' list of failed messages, and the retry job.
            models.Index(fields=["status", "received_at"], name="inbound_status"),
            # Duplicate detection across mailboxes (the same mail sent to two of our addresses).
            models.Index(fields=["message_id"], name="inbound_message_id"),
        ]

    def __str__(self) -> str:
        return self.subject or self.message_id or f"message {self.pk}"

    def raw_read(self, limit: int = -1) -> bytes:
        """The stored bytes (the first `limit` of them); FileNotFoundError when they were
        kept in a file that is gone from storage."""
        if self.raw_data is not None:
            data = bytes(self.raw_data)
            return data if limit < 0 else data[:limit]
        if not self.raw.name:
            raise FileNotFoundError(f"inbound message {self.pk} has no stored bytes")
        with default_storage.open(self.raw.name, "rb") as handle:
            return handle.read(limit)


# --- Mail out -------------------------------------------------------------------------------


class TemplateCode(models.TextChoices):
    """The emails the help desk sends; the codes are osTicket's where it has one."""

    TICKET_AUTORESP = "ticket.autoresp", _("New ticket auto-response (customer)")
    MESSAGE_AUTORESP = "message.autoresp", _("Message received auto-response (customer)")
    TICKET_REPLY = "ticket.reply", _("Agent response (customer)")
    STATUS_NOTICE = "ticket.status_notice", _("Status change notice (customer)")
    TICKET_ALERT = "ticket.alert", _("New ticket alert (agents)")
    MESSAGE_ALERT = "message.alert", _("New message alert (agents)")
    NOTE_ALERT = "note.alert", _("Internal note alert (agents)")
    ASSIGNED_ALERT = "assigned.alert", _("Assignment alert (agents)")
    TRANSFER_ALERT = "transfer.alert", _("Transfer alert (agents)")
    OVERDUE_ALERT = "ticket.overdue", _("Overdue ticket alert (agents)")


class EmailTemplate(models.Model):
    """An admin-editable email. Subject and bodies are Django template source rendered on
    plain data only (`mailgate.notifications.context_build`); a code without a row uses the
    shipped default (`mailgate.templates_default`), and an inactive row sends nothing."""

    code = models.CharField(_("email"), max_length=32, choices=TemplateCode, unique=True)
    subject = models.CharField(_("subject"), max_length=255)
    body_text = models.TextField(_("plain text body"))
    body_html = models.TextField(
        _("HTML body"), blank=True, help_text=_("Leave empty to send plain text only.")
    )
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("Inactive: this email is not sent at all.")
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("email template")
        verbose_name_plural = _("email templates")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(code__in=TemplateCode.values), name="emailtemplate_code_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.get_code_display()

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Forms call clean(); this catches every other writer, so a broken template never
        # reaches the sender.
        from .notifications import template_errors

        errors = template_errors(
            subject=self.subject, body_text=self.body_text, body_html=self.body_html
        )
        if errors:
            raise ValidationError(errors)
        super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        from .notifications import template_errors

        errors = template_errors(
            subject=self.subject, body_text=self.body_text, body_html=self.body_html
        )
        if errors:
            raise ValidationError(errors)


class OutboundStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Not sent")


class Audience(models.TextChoices):
    CUSTOMER = "customer", _("Customer")
    STAFF = "staff", _("Agents")


class OutboundMessage(models.Model):
    """Every email sent about a ticket, written before it is sent: the send log.

    `message_id` is the Message-ID the mail carried, so a reply quoting it threads back;
    `audience` and `to` tell who could know it (an alert's id is known to its agent only)."""

    # Served by the outbound_ticket index, which it leads.
    ticket = models.ForeignKey(
        "tickets.Ticket", models.CASCADE, related_name="outbound_messages", db_index=False
    )
    entry = models.ForeignKey(
        "tickets.ThreadEntry", models.SET_NULL, null=True, blank=True, related_name="+"
    )
    template = models.CharField(_("email"), max_length=32, choices=TemplateCode)
    audience = models.CharField(_("audience"), max_length=8, choices=Audience)
    is_automatic = models.BooleanField(_("automatic"), default=True)
    from_email = models.CharField(_("from"), max_length=320)
    # The first To address, lower case: what the auto-response rate limit counts.
    recipient = models.EmailField(_("recipient"))
    to = models.JSONField(_("to"), default=list)
    cc = models.JSONField(_("cc"), default=list, blank=True)
    subject = models.CharField(_("subject"), max_length=255)
    body_text = models.TextField(_("plain text body"))
    body_html = models.TextField(_("HTML body"), blank=True)
    message_id = models.CharField(_("Message-ID"), max_length=255)
    headers = models.JSONField(_("other headers"), default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=8, choices=OutboundStatus, default=OutboundStatus.QUEUED
    )
    error = models.TextField(_("error"), blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    claimed_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("outbound message")
        verbose_name_plural = _("outbound messages")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=OutboundStatus.values), name="outbound_status_valid"
            ),
        ]
        indexes = [
            # Replies to our mail: find what a reply's In-Reply-To/References quotes.
            models.Index(fields=["message_id"], name="outbound_message_id"),
            # The auto-response rate limit: mail to one address in the last hour.
            models.Index(fields=["recipient", "created_at"], name="outbound_recipient"),
            # The sweep of stuck or unsent mail, and the admins' list of failures.
            models.Index(fields=["status", "created_at"], name="outbound_status"),
            # The ticket page's mail log.
            models.Index(fields=["ticket", "created_at"], name="outbound_ticket"),
        ]

    def __str__(self) -> str:
        return f"{self.template} to {self.recipient} ({self.status})"
