"""Forms of the API admin screens (validation only; the services do the work)."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts.api_keys import allowed_ips_clean
from accounts.models import User

from .models import Webhook, WebhookEvent


class ApiKeyForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=128)
    user = forms.ModelChoiceField(
        label=_("Acts as"),
        queryset=User.objects.filter(is_active=True).order_by("email"),
        required=False,
        empty_label=_("The built-in API service account"),
        help_text=_("The key has this user's permissions (a service account, or a person)."),
    )
    allowed_ips = forms.CharField(
        label=_("Allowed addresses"),
        required=False,
        help_text=_("Addresses or networks, separated by spaces or commas; empty: any."),
    )
    expires_at = forms.DateTimeField(label=_("Expires"), required=False)
    can_create_tickets = forms.BooleanField(
        label=_("May open tickets through the osTicket API"), required=False
    )
    can_exec_cron = forms.BooleanField(
        label=_("May run cron through the osTicket API"), required=False
    )
    notes = forms.CharField(
        label=_("Notes"), widget=forms.Textarea(attrs={"rows": 3}), required=False
    )

    def clean_allowed_ips(self) -> list[str]:
        try:
            return allowed_ips_clean(self.cleaned_data["allowed_ips"])
        except ValidationError as error:
            raise ValidationError(error.message_dict["allowed_ips"]) from None


class WebhookForm(forms.ModelForm):
    url = forms.URLField(label=_("URL"), max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(
        label=_("Events"), choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Webhook
        fields = ["name", "url", "events", "is_active"]

    def clean_url(self) -> str:
        from .webhooks import url_check

        url = self.cleaned_data["url"]
        try:
            url_check(url)
        except ValidationError as error:
            raise ValidationError(error.message_dict["url"]) from None
        return url
