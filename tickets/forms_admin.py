"""Forms of the ticket admin screens: statuses and priorities."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Priority, TicketStatus


class StatusForm(forms.ModelForm):
    class Meta:
        model = TicketStatus
        fields = ["name", "state", "is_default", "waits_on_customer", "pauses_sla", "auto_close"]

    def _get_validation_exclusions(self) -> set[str]:
        # "One default" is kept by the save, which takes the flag from the previous default
        # in the same transaction; checking it here would refuse every handover.
        exclude = super()._get_validation_exclusions()
        exclude.add("is_default")
        return exclude

    def clean_state(self) -> str:
        state = self.cleaned_data["state"]
        status = self.instance
        if status.pk is not None and state != status.state and status.tickets.exists():
            # Tickets in the status were opened or closed under the old state's rules
            # (closed_at, the SLA clock); moving them all at once would rewrite history.
            raise forms.ValidationError(
                _("Tickets have this status, so its state stays; add a new status instead.")
            )
        return state


class PriorityForm(forms.ModelForm):
    class Meta:
        model = Priority
        fields = ["name", "urgency", "color", "is_default"]
        widgets = {"color": forms.TextInput(attrs={"type": "color"})}
        help_texts = {"urgency": _("1 is the most urgent; each priority has its own.")}

    def _get_validation_exclusions(self) -> set[str]:
        # "One default" is kept by the save, which takes the flag from the previous default
        # in the same transaction; checking it here would refuse every handover.
        exclude = super()._get_validation_exclusions()
        exclude.add("is_default")
        return exclude

    def clean_color(self) -> str:
        color = self.cleaned_data["color"].strip()
        if len(color) != 7 or not color.startswith("#"):
            raise forms.ValidationError(_("Use a colour such as #FF8800."))
        try:
            int(color[1:], 16)
        except ValueError:
            raise forms.ValidationError(_("Use a colour such as #FF8800.")) from None
        return color.upper()
