from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, SetPasswordForm
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from helpdesk.config import config

from . import permissions
from .models import User, normalize_email


class StaffLoginForm(AuthenticationForm):
    """The staff sign-in: only active agents (and superusers) get through."""

    username = forms.EmailField(
        label=_("Email"), widget=forms.EmailInput(attrs={"autofocus": True})
    )

    def confirm_login_allowed(self, user) -> None:  # type: ignore[no-untyped-def]
        super().confirm_login_allowed(user)
        if not permissions.is_agent(user):
            raise forms.ValidationError(
                _("This sign-in is for agents. Customers sign in on the help desk's home page."),
                code="not_agent",
            )


class PortalLoginForm(AuthenticationForm):
    username = forms.EmailField(
        label=_("Email"), widget=forms.EmailInput(attrs={"autofocus": True})
    )


# --- Customer portal: registration and password reset --------------------------------------


class RegisterForm(forms.Form):
    """Step one of registering: a name and the address to verify. The password is chosen
    after the emailed link proves the address belongs to the person registering."""

    name = forms.CharField(
        label=_("Your name"), max_length=150, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    email = forms.EmailField(
        label=_("Email address"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data["email"])


class RegisterPasswordForm(SetPasswordForm):
    """Step two, from the verified link: choose a password. Creates the customer, or gives a
    password to the customer who so far only wrote in by email (claiming the account)."""

    def __init__(self, *, email: str, name: str, **kwargs: object) -> None:
        from .services import organization_for_email, user_get_by_email

        self.email, self.name = email, name
        # The password validators compare against the person's name and address.
        user = user_get_by_email(email=email) or User(
            email=email, name=name, organization=organization_for_email(email)
        )
        super().__init__(user, **kwargs)

    def save(self, commit: bool = True) -> User:
        from .services import user_get_or_create_by_email

        with transaction.atomic():
            user = user_get_or_create_by_email(email=self.email, name=self.name)
            user = User.objects.select_for_update().get(pk=user.pk)
            if not register_claimable(user):
                raise forms.ValidationError(
                    _("This account is already set up. Sign in, or reset your password."),
                    code="claimed",
                )
            user.set_password(self.cleaned_data["new_password1"])
            fields = ["password"]
            if not user.name and self.name:
                user.name = self.name[:150]
                fields.append("name")
            user.save(update_fields=fields)
        return user


def register_claimable(user: User | None) -> bool:
    """May a verified address take (or create) this account by registering? Only a new
    address, or an active customer who has never had a password; never an agent (agents get
    their access from an admin)."""
    if user is None:
        return True
    return user.is_active and not user.has_usable_password() and not permissions.is_agent(user)


class PortalPasswordResetForm(PasswordResetForm):
    """Django's reset, with links built on `SITE_URL` (never on the request's Host header)."""

    email = forms.EmailField(
        label=_("Email address"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )

    def send_mail(  # type: ignore[override]
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict,
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        context["site_url"] = settings.SITE_URL
        context["helpdesk_title"] = config().helpdesk_name
        super().send_mail(
            subject_template_name,
            email_template_name,
            context,
            from_email,
            to_email,
            html_email_template_name,
        )
