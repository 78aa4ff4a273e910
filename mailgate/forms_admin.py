"""Forms of the mail admin screens: mailboxes, the incoming mail filter, email templates."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from routing.models import Department, HelpTopic

from .fetching import FETCHED_PROTOCOLS
from .models import EmailTemplate, InboundStatus, Mailbox


class MailboxForm(forms.ModelForm):
    """A mailbox's settings. The password is write-only: the page never holds the stored
    one, and an empty field keeps it."""

    password = forms.CharField(
        label=_("password"),
        required=False,
        strip=False,
        max_length=255,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    class Meta:
        model = Mailbox
        fields = [
            "name", "email", "protocol", "host", "port", "security", "username", "password",
            "folder", "after_fetch", "move_to_folder", "batch_size", "department", "help_topic",
            "priority", "is_active", "max_failures",
        ]  # fmt: skip
        help_texts = {
            "email": _("Customers write to this address; mail from it is never a ticket."),
            "port": _("Empty: the protocol's usual port (993/143 IMAP, 995/110 POP3)."),
            "folder": _("IMAP only."),
            "move_to_folder": _("IMAP, with “Move to a folder”; made when missing."),
            "department": _(
                "New tickets from this mailbox go here (else the help topic's or the default)."
            ),
            "max_failures": _("Switched off after this many failed fetches in a row; 0: never."),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The stored password never goes back into the form (nor into "what changed").
        self.initial.pop("password", None)
        has_password = bool(self.instance.pk and self.instance.password)
        self.fields["password"].help_text = (
            _("A password is stored. Leave empty to keep it; type a new one to replace it.")
            if has_password
            else _("The mail server password.")
        )
        # Archived departments and topics take no new tickets; the current one stays listed.
        for name, model in (("department", Department), ("help_topic", HelpTopic)):
            current = getattr(self.instance, f"{name}_id", None)
            self.fields[name].queryset = model.objects.filter(Q(is_active=True) | Q(pk=current))

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()

    def clean_password(self) -> str:
        return self.cleaned_data["password"] or (self.instance.password if self.instance.pk else "")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("protocol") in FETCHED_PROTOCOLS:
            for name in ("host", "username"):
                if not data.get(name):
                    self.add_error(name, _("Needed to fetch mail by IMAP or POP3."))
            if not data.get("password"):
                self.add_error("password", _("Needed to fetch mail by IMAP or POP3."))
        if (
            data.get("protocol") == Mailbox.Protocol.IMAP
            and data.get("after_fetch") == Mailbox.AfterFetch.MOVE
            and not data.get("move_to_folder")
        ):
            self.add_error("move_to_folder", _("Name the folder to move fetched mail to."))
        port = data.get("port")
        if port is not None and not 1 <= port <= 65535:
            self.add_error("port", _("A port is a number from 1 to 65535."))
        batch = data.get("batch_size")
        if batch is not None and batch < 1:
            self.add_error("batch_size", _("Fetch at least one message per run."))
        return data


class InboundFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("Any status")), *InboundStatus.choices]
    )
    mailbox = forms.ModelChoiceField(
        label=_("Mailbox"),
        required=False,
        queryset=Mailbox.objects.order_by("name"),
        empty_label=_("Any mailbox"),
    )


class InboundRetryForm(forms.Form):
    """The messages ticked on the incoming mail list."""

    ids = forms.TypedMultipleChoiceField(coerce=int, choices=(), required=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Any number is accepted here; the view looks the messages up.
        self.fields["ids"].valid_value = lambda value: str(value).isdigit()  # type: ignore[method-assign]


class EmailTemplateForm(forms.ModelForm):
    """Subject and bodies of one email. Model validation (`EmailTemplate.clean`) refuses
    source that does not compile or fails on sample data, with the error by field."""

    class Meta:
        model = EmailTemplate
        fields = ["subject", "body_text", "body_html", "is_active"]
        widgets = {
            "body_text": forms.Textarea(attrs={"rows": 14, "spellcheck": "true"}),
            "body_html": forms.Textarea(attrs={"rows": 14, "spellcheck": "false"}),
        }
