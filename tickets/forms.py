"""Forms of the staff ticket page: validation only; the services do the work.

The choice fields are `ModelChoiceField`s, so a posted value is checked against the database,
but the page renders them from `TicketActionOptions` (one query for all the option lists)
instead of letting every select run its own query.
"""

from __future__ import annotations

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.forms.utils import flatatt
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _
from markupsafe import escape

from accounts.models import User
from helpdesk.config import config
from routing.models import CtiItem, Department, HelpTopic, Team
from sla.models import SLAPlan

from .models import Priority, TicketStatus
from .selectors import TicketActionOptions
from .services import SUBJECT_MAX, AttachmentUpload

BODY_MAX = 100_000
ATTACHMENTS_MAX = 20


class FastSelect(forms.Select):
    """A <select> built in Python: the ticket page renders a dozen selects whose options
    (agents, topics, CTI items) can run to hundreds, and the template-per-option rendering
    of Django's widget would cost more than the rest of the page."""

    def render(
        self, name: str, value: object, attrs: dict | None = None, renderer: object = None
    ) -> SafeString:
        final_attrs = self.build_attrs(self.attrs, {**(attrs or {}), "name": name})
        selected = {str(v) for v in self.format_value(value)}
        # markupsafe's escape (C) on hundreds of options: Django's conditional_escape goes
        # through its lazy-string wrapper per call and cost more than the rest of the page.
        # Both leave a string that is already safe (has __html__) as it is.
        options = "".join(
            '<option value="{}"{}>{}</option>'.format(
                escape(option_value),
                " selected" if str(option_value) in selected else "",
                escape(label),
            )
            for option_value, label in self._plain_choices()
        )
        return format_html("<select{}>{}</select>", flatatt(final_attrs), mark_safe(options))  # noqa: S308

    def _plain_choices(self) -> list[tuple[object, object]]:
        result = []
        for option_value, label in self.choices:
            if isinstance(label, list | tuple):  # an option group: flatten it
                result.extend(label)
                continue
            value = getattr(option_value, "value", option_value)  # ModelChoiceIteratorValue
            result.append(("" if value is None else value, label))
        return result


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Any number of files (none included)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)

    def clean(self, data: object, initial: object = None) -> list[UploadedFile]:
        if not data:
            return []
        files = data if isinstance(data, list | tuple) else [data]
        if len(files) > ATTACHMENTS_MAX:
            raise forms.ValidationError(
                _("Attach at most %(count)d files at once.") % {"count": ATTACHMENTS_MAX}
            )
        single = super().clean
        return [single(file, initial) for file in files]


def uploads(files: list[UploadedFile]) -> list[AttachmentUpload]:
    """Uploaded files as the services take them; the services check size and images."""
    limit = config().max_attachment_size
    result = []
    for file in files:
        if file.size is not None and file.size > limit:
            raise forms.ValidationError(
                _("%(name)s is larger than the limit of %(limit)d MB.")
                % {"name": file.name, "limit": limit // (1024 * 1024)}
            )
        result.append(
            AttachmentUpload(
                name=file.name or "", content=file.read(), content_type=file.content_type or ""
            )
        )
    return result


def _choices(options: list[tuple[int, str]], empty: str | None = None) -> list[tuple[object, str]]:
    head: list[tuple[object, str]] = [("", empty)] if empty is not None else []
    return head + list(options)


class TicketActionForm(forms.Form):
    """A form of the ticket page. `options` gives the choices to render (the page's one
    query); without it a field lists its queryset as usual."""

    prefix_name = ""

    def __init__(
        self, *args: object, options: TicketActionOptions | None = None, **kwargs: object
    ) -> None:
        kwargs.setdefault("prefix", self.prefix_name or None)
        super().__init__(*args, **kwargs)
        for form_field in self.fields.values():
            if type(form_field.widget) is forms.Select:
                fast = FastSelect(attrs=form_field.widget.attrs)
                fast.choices = form_field.widget.choices
                fast.is_required = form_field.widget.is_required
                form_field.widget = fast
        if options is not None:
            self.set_choices(options)

    def set_choices(self, options: TicketActionOptions) -> None:
        pass


class BodyField(forms.CharField):
    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("max_length", BODY_MAX)
        kwargs.setdefault("strip", True)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 6}))
        super().__init__(**kwargs)


class ReplyForm(TicketActionForm):
    prefix_name = "reply"

    body = BodyField(
        label=_("Reply"), required=False, help_text=_("Markdown: **bold**, _italic_, lists, links.")
    )
    attachments = MultipleFileField(label=_("Attachments"))
    signature = forms.ChoiceField(label=_("Signature"), required=False, choices=[])
    status = forms.ModelChoiceField(
        label=_("Status after sending"),
        queryset=TicketStatus.objects.all(),
        required=False,
        empty_label=_("Keep the current status"),
    )

    def __init__(
        self,
        *args: object,
        agent_signature: str = "",
        department_signature: str = "",
        **kwargs: object,
    ) -> None:
        self.signatures = {
            "mine": agent_signature.strip(),
            "department": department_signature.strip(),
        }
        super().__init__(*args, **kwargs)
        choices = [("none", _("No signature"))]
        if self.signatures["mine"]:
            choices.append(("mine", _("My signature")))
        if self.signatures["department"]:
            choices.append(("department", _("Department signature")))
        field = self.fields["signature"]
        field.choices = choices
        field.initial = choices[1][0] if len(choices) > 1 else "none"
        if len(choices) == 1:
            field.widget = forms.HiddenInput()

    def set_choices(self, options: TicketActionOptions) -> None:
        self.fields["status"].choices = _choices(options.statuses, _("Keep the current status"))

    def clean(self) -> dict:
        data = super().clean()
        if not data.get("body") and not data.get("attachments") and not self.errors:
            self.add_error("body", _("Write a reply or attach a file."))
        return data

    def body_with_signature(self) -> str:
        body = self.cleaned_data["body"]
        signature = self.signatures.get(self.cleaned_data.get("signature") or "none", "")
        if signature:
            return f"{body}\n\n-- \n{signature}" if body else signature
        return body


class NoteForm(TicketActionForm):
    prefix_name = "note"

    body = BodyField(label=_("Internal note"), required=False)
    attachments = MultipleFileField(label=_("Attachments"))

    def clean(self) -> dict:
        data = super().clean()
        if not data.get("body") and not data.get("attachments") and not self.errors:
            self.add_error("body", _("Write a note or attach a file."))
        return data


class PreviewForm(forms.Form):
    body = forms.CharField(max_length=BODY_MAX, required=False, strip=False)


class AssignForm(TicketActionForm):
    prefix_name = "assign"

    agent = forms.ModelChoiceField(
        label=_("Agent"), queryset=User.objects.filter(agent__isnull=False), required=False
    )
    team = forms.ModelChoiceField(
        label=_("Team"), queryset=Team.objects.filter(is_active=True), required=False
    )
    comment = forms.CharField(label=_("Comment"), max_length=1000, required=False)

    def set_choices(self, options: TicketActionOptions) -> None:
        self.fields["agent"].choices = _choices(options.agents, _("— no change —"))
        self.fields["team"].choices = _choices(options.teams, _("— no change —"))

    def clean(self) -> dict:
        data = super().clean()
        if not data.get("agent") and not data.get("team") and not self.errors:
            self.add_error("agent", _("Choose an agent or a team."))
        return data


class ReleaseForm(forms.Form):
    what = forms.ChoiceField(
        choices=[("agent", _("Agent")), ("team", _("Team")), ("both", _("Agent and team"))],
        initial="agent",
        required=False,
    )


class TransferForm(TicketActionForm):
    prefix_name = "transfer"

    department = forms.ModelChoiceField(
        label=_("Department"), queryset=Department.objects.filter(is_active=True)
    )
    comment = forms.CharField(label=_("Reason"), max_length=1000, required=False)

    def set_choices(self, options: TicketActionOptions) -> None:
        self.fields["department"].choices = _choices(options.departments, "—")


class StatusForm(TicketActionForm):
    prefix_name = "status"

    status = forms.ModelChoiceField(label=_("Status"), queryset=TicketStatus.objects.all())
    comment = forms.CharField(label=_("Comment"), max_length=1000, required=False)

    def set_choices(self, options: TicketActionOptions) -> None:
        self.fields["status"].choices = _choices(options.statuses, "—")


class PriorityForm(TicketActionForm):
    prefix_name = "priority"

    priority = forms.ModelChoiceField(label=_("Priority"), queryset=Priority.objects.all())

    def set_choices(self, options: TicketActionOptions) -> None:
        self.fields["priority"].choices = _choices(options.priorities, "—")


class TopicForm(TicketActionForm):
    prefix_name = "topic"

    help_topic = forms.ModelChoiceField(
        label=_("Help topic"),
        queryset=HelpTopic.objects.filter(is_active=True),
        required=False,
        empty_label=_("No help topic"),
    )

    def set_choices(self, options: TicketActionOptions) -> None:
        self.fields["help_topic"].choices = _choices(options.help_topics, _("No help topic"))


class CtiForm(TicketActionForm):
    prefix_name = "cti"

    cti_item = forms.ModelChoiceField(
        label=_("Classification"),
        queryset=CtiItem.objects.select_related("type__category"),
        required=False,
        empty_label=_("Unclassified"),
    )

    def set_choices(self, options: TicketActionOptions) -> None:
        self.fields["cti_item"].choices = _choices(options.cti_items, _("Unclassified"))


class SlaForm(TicketActionForm):
    prefix_name = "sla"

    sla = forms.ModelChoiceField(
        label=_("SLA plan"),
        queryset=SLAPlan.objects.filter(is_active=True),
        required=False,
        empty_label=_("No SLA plan"),
        help_text=_("The due dates are computed again from when the ticket opened."),
    )

    def set_choices(self, options: TicketActionOptions) -> None:
        self.fields["sla"].choices = _choices(options.sla_plans, _("No SLA plan"))


class DueOverrideForm(TicketActionForm):
    prefix_name = "due"

    due_at = forms.DateTimeField(
        label=_("Due"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        help_text=_("In your time zone. Leave empty to go back to the SLA's due date."),
    )
    comment = forms.CharField(label=_("Reason"), max_length=255, required=False)


class SubjectForm(TicketActionForm):
    prefix_name = "subject"

    subject = forms.CharField(label=_("Subject"), max_length=SUBJECT_MAX)


class CollaboratorAddForm(TicketActionForm):
    prefix_name = "collab"

    email = forms.EmailField(label=_("Email address"))
    name = forms.CharField(label=_("Name"), max_length=150, required=False)


class CollaboratorRemoveForm(forms.Form):
    remove = forms.ModelChoiceField(queryset=User.objects.all())
