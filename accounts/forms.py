from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from . import permissions


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
