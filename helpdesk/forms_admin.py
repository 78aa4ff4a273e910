"""Forms of the help desk's own admin screens: settings and the admin log's filter."""

from __future__ import annotations

import re

from django import forms
from django.apps import apps
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from routing.models import Department, HelpTopic
from tickets.models import Priority
from tickets.numbers import digit_count, number_format

from .models import AdminLogEntry, HelpdeskSettings

NUMBER_FORMAT = re.compile(r"[A-Za-z0-9#][A-Za-z0-9#-]{0,31}")


class SettingsForm(forms.ModelForm):
    class Meta:
        model = HelpdeskSettings
        fields = [
            "helpdesk_name",
            "default_department",
            "default_priority",
            "default_sla",
            "default_help_topic",
            "ticket_number_format",
            "claim_on_reply",
            "customers_can_close",
            "require_help_topic_to_close",
            "collaborator_visibility",
            "max_attachment_size",
            "allowed_attachment_types",
        ]
        widgets = {"allowed_attachment_types": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["default_department"].queryset = Department.objects.filter(is_active=True)
        self.fields["default_help_topic"].queryset = HelpTopic.objects.filter(
            is_active=True
        ).select_related("parent")
        self.fields["default_priority"].queryset = Priority.objects.all()
        if "default_sla" in self.fields:
            plans = self.fields["default_sla"].queryset
            if hasattr(plans.model, "is_active"):
                self.fields["default_sla"].queryset = plans.filter(is_active=True)

    def clean_ticket_number_format(self) -> str:
        value = self.cleaned_data["ticket_number_format"].strip()
        # Numbers appear in mail subjects as [#number]; the mail gateway finds them there only
        # when they are letters, digits and hyphens (HELPDESK_MAIL_TICKET_TOKEN).
        if not NUMBER_FORMAT.fullmatch(value) or "#" not in value:
            raise forms.ValidationError(
                _("Use letters, digits, hyphens and at least one # (e.g. ###### or TX-####).")
            )
        example = number_format(value, "1" * max(digit_count(value), 6))
        if len(example) > 32:
            raise forms.ValidationError(_("Numbers of this format would be too long."))
        return value

    def clean_allowed_attachment_types(self) -> str:
        text = self.cleaned_data["allowed_attachment_types"].replace(",", "\n")
        items = [item.strip().lower() for item in text.splitlines() if item.strip()]
        bad = [
            item
            for item in items
            if not (
                (item.startswith(".") and len(item) > 1 and "/" not in item)
                or (item.count("/") == 1 and not item.startswith("/") and not item.endswith("/"))
            )
        ]
        if bad:
            raise forms.ValidationError(
                _("Not an extension or MIME type: %(items)s") % {"items": ", ".join(bad)}
            )
        return "\n".join(dict.fromkeys(items))


def _type_label(label: str) -> str:
    try:
        return str(apps.get_model(label)._meta.verbose_name).capitalize()
    except (LookupError, ValueError):
        return label


class LogFilterForm(forms.Form):
    """The admin log's filter: by object type and by who made the change."""

    object_type = forms.ChoiceField(label=_("Object type"), required=False)
    actor = forms.ModelChoiceField(
        label=_("Who"), queryset=User.objects.none(), required=False, empty_label=_("Anyone")
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        types = AdminLogEntry.objects.order_by().values_list("object_type", flat=True).distinct()
        choices = sorted(((label, _type_label(label)) for label in types), key=lambda c: c[1])
        self.fields["object_type"].choices = [("", _("All types")), *choices]
        actors = AdminLogEntry.objects.filter(actor__isnull=False).values("actor")
        self.fields["actor"].queryset = User.objects.filter(pk__in=actors).order_by("email")
