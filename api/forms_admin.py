"""Forms of the API admin screens (validation only; the services do the work)."""

from django import forms
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts.api_keys import allowed_ips_clean
from accounts.models import User

from .models import Webhook, WebhookEvent

# Wrong passwords an admin may type into a confirmation in a row before it locks for the
# window: enough for typos, too few to guess a password with a stolen session.
REAUTH_MAX_FAILURES = 5
REAUTH_WINDOW = 15 * 60


def reauth_failures_key(user: User) -> str:
    return f"reauth-failures:{user.pk}"


class ReauthForm(forms.Form):
    """The signed-in admin types their password again before an action that hands out a
    credential (a new or regenerated API key), so an unattended or stolen session alone
    cannot mint one. Failures count per user in the shared cache."""

    password = forms.CharField(
        label=_("Your password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=_("Confirm it is you: type the password you sign in with."),
    )

    def __init__(self, *args: object, user: User, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        key = reauth_failures_key(self.user)
        if (cache.get(key) or 0) >= REAUTH_MAX_FAILURES:
            raise ValidationError(
                _("Too many wrong passwords. Wait 15 minutes, then try again."), code="locked"
            )
        if not self.user.has_usable_password():
            raise ValidationError(
                _("Your account has no password. Set one on your profile page first."),
                code="no_password",
            )
        if not self.user.check_password(password):
            cache.add(key, 0, timeout=REAUTH_WINDOW)
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.set(key, 1, timeout=REAUTH_WINDOW)
            raise ValidationError(
                _("This is not your password. Type it again."), code="password_incorrect"
            )
        cache.delete(key)
        return password


class ApiKeyForm(ReauthForm):
    field_order = [
        "name",
        "user",
        "allowed_ips",
        "expires_at",
        "can_create_tickets",
        "can_exec_cron",
        "notes",
        "password",
    ]

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
