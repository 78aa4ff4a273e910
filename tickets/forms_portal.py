"""The customer portal's ticket forms: open a ticket, reply, ask for a guest link."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from routing.models import HelpTopic

from .attachments_policy import MAX_FILES, attachments_check, max_attachment_size
from .services import SUBJECT_MAX, AttachmentUpload


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class AttachmentsField(forms.FileField):
    """Several files in one input; cleaned into checked `AttachmentUpload`s (see
    `tickets.attachments_policy`)."""

    widget = MultipleFileInput

    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def clean(self, data: object, initial: object = None) -> list[AttachmentUpload]:
        uploads = data if isinstance(data, list | tuple) else ([data] if data else [])
        uploads = [upload for upload in uploads if upload]
        if not uploads:
            if self.required:
                raise ValidationError(self.error_messages["required"], code="required")
            return []
        return attachments_check(uploads)


def _attachments_help() -> str:
    from django.template.defaultfilters import filesizeformat

    return _("Up to %(count)d files, each at most %(size)s.") % {
        "count": MAX_FILES,
        "size": filesizeformat(max_attachment_size()),
    }


class HelpTopicChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: HelpTopic) -> str:
        return obj.full_name


class TicketOpenForm(forms.Form):
    """A new ticket from the portal. Visitors give a name and an address; signed-in
    customers are the ticket's owner. Only public, active help topics are offered."""

    name = forms.CharField(label=_("Your name"), max_length=150)
    email = forms.EmailField(label=_("Your email address"), max_length=254)
    help_topic = HelpTopicChoiceField(
        label=_("Help topic"), queryset=HelpTopic.objects.none(), empty_label=_("Choose…")
    )
    subject = forms.CharField(label=_("Subject"), max_length=SUBJECT_MAX)
    message = forms.CharField(
        label=_("Message"),
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text=_("Describe what you need; the more detail, the faster the answer."),
    )
    attachments = AttachmentsField(label=_("Attachments"))

    def __init__(self, *args: object, signed_in: bool = False, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        if signed_in:
            del self.fields["name"]
            del self.fields["email"]
        else:
            self.fields["name"].widget.attrs["autocomplete"] = "name"
            self.fields["email"].widget.attrs["autocomplete"] = "email"
        topics = HelpTopic.objects.filter(is_public=True, is_active=True).select_related(
            "parent__parent__parent"
        )
        self.fields["help_topic"].queryset = topics
        # A help desk without public topics routes every ticket to its default department.
        self.fields["help_topic"].required = topics.exists()
        if not self.fields["help_topic"].required:
            del self.fields["help_topic"]
        self.fields["attachments"].help_text = _attachments_help()


class ReplyForm(forms.Form):
    message = forms.CharField(
        label=_("Your reply"), widget=forms.Textarea(attrs={"rows": 6}), required=False
    )
    attachments = AttachmentsField(label=_("Attachments"))

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["attachments"].help_text = _attachments_help()

    def clean(self) -> dict:
        data = super().clean()
        empty = not (data.get("message") or "").strip() and not data.get("attachments")
        if empty and "attachments" not in self.errors:
            self.add_error("message", _("Write a message or attach a file."))
        return data


class GuestAccessForm(forms.Form):
    """Check a ticket without an account: the address the ticket belongs to and its number."""

    email = forms.EmailField(
        label=_("Email address"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    number = forms.CharField(
        label=_("Ticket number"), max_length=32, widget=forms.TextInput(attrs={"inputmode": "text"})
    )

    def clean_number(self) -> str:
        return self.cleaned_data["number"].strip().lstrip("#")
