"""Sign-in and the two entry points: the customer portal's home and the staff home; the
portal's registration (with an emailed verification link) and password reset."""

import hashlib
import logging
import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse, reverse_lazy
from django.utils.translation import gettext as _

from helpdesk.config import config

from .api_keys import client_ip
from .forms import (
    PortalLoginForm,
    PortalPasswordResetForm,
    RegisterForm,
    RegisterPasswordForm,
    StaffLoginForm,
    register_claimable,
)
from .services import user_get_by_email

REGISTER_SALT = "accounts.portal.register"

logger = logging.getLogger(__name__)


# --- Portal helpers: link emails and rate limits ---------------------------------------------


def rate_limited(scope: str, key: str, limit: int) -> bool:
    """Count one event of `scope` for `key`; True once it is over `limit` in the current
    hour. The cache is shared by every web process in production (`CACHE_URL`), so the
    limit holds across them."""
    if limit <= 0:
        return False
    window = int(time.time() // 3600)
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    cache_key = f"portal-limit:{scope}:{digest}:{window}"
    cache.add(cache_key, 0, timeout=3600)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # expired between add and incr
        cache.set(cache_key, 1, timeout=3600)
        count = 1
    return count > limit


def portal_rate_limited(request: HttpRequest, scope: str, limit: int) -> bool:
    """`rate_limited` per client address (behind `TRUSTED_PROXIES`, the forwarded one)."""
    return rate_limited(scope, client_ip(request.META), limit)


def portal_mail_send(*, template: str, to: str, context: dict) -> None:
    """Send `portal/email/<template>_subject.txt` and `_body.txt` to one address. Links
    are built on SITE_URL, never on the request's Host header. One address gets at most
    `PORTAL_EMAIL_LIMIT` such mails an hour, however many clients ask: nobody can flood a
    mailbox through our forms."""
    if rate_limited("mail-to", to.lower(), settings.HELPDESK_PORTAL_EMAIL_LIMIT):
        logger.warning("Not sending %s mail: too many to one address this hour.", template)
        return
    context = {"site_url": settings.SITE_URL, "helpdesk_title": config().helpdesk_name, **context}
    subject = " ".join(render_to_string(f"portal/email/{template}_subject.txt", context).split())
    body = render_to_string(f"portal/email/{template}_body.txt", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to])


def registration_link_send(*, email: str, name: str) -> None:
    """Mail the address a link to finish registering, or, when it already has an account, a
    reminder to sign in or reset the password. The page never says which (no enumeration);
    a deactivated account gets nothing."""
    user = user_get_by_email(email=email)
    if register_claimable(user):
        token = signing.dumps({"e": email, "n": name}, salt=REGISTER_SALT, compress=True)
        path = reverse("portal:register_verify", kwargs={"token": token})
        days = settings.HELPDESK_REGISTRATION_LINK_MAX_AGE // 86400
        portal_mail_send(
            template="register_verify",
            to=email,
            context={"name": name, "url": f"{settings.SITE_URL}{path}", "days": days},
        )
    elif user is not None and user.is_active:
        portal_mail_send(
            template="register_exists",
            to=email,
            context={
                "name": user.get_full_name(),
                "login_url": settings.SITE_URL + reverse("portal:login"),
                "reset_url": settings.SITE_URL + reverse("portal:password_reset"),
            },
        )


def _too_many(request: HttpRequest, template: str, form: object) -> HttpResponse:
    messages.error(request, _("Too many requests from your address. Please try again later."))
    return render(request, template, {"form": form}, status=429)


# --- Portal pages ----------------------------------------------------------------------------


def portal_home(request: HttpRequest) -> HttpResponse:
    from tickets.forms_portal import GuestAccessForm

    return render(request, "portal/home.html", {"guest_form": GuestAccessForm()})


def register(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("portal:home")
    form = RegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if portal_rate_limited(request, "email", settings.HELPDESK_PORTAL_EMAIL_LIMIT):
            return _too_many(request, "portal/register.html", form)
        registration_link_send(email=form.cleaned_data["email"], name=form.cleaned_data["name"])
        request.session["portal_register_email"] = form.cleaned_data["email"]
        return redirect("portal:register_sent")
    return render(request, "portal/register.html", {"form": form, "nav_active": "register"})


def register_sent(request: HttpRequest) -> HttpResponse:
    email = request.session.get("portal_register_email", "")
    return render(request, "portal/register_sent.html", {"email": email})


def register_verify(request: HttpRequest, token: str) -> HttpResponse:
    """The emailed link: choose a password, and the account exists (or is claimed)."""
    try:
        data = signing.loads(
            token, salt=REGISTER_SALT, max_age=settings.HELPDESK_REGISTRATION_LINK_MAX_AGE
        )
        email, name = str(data["e"]), str(data.get("n", ""))
    except (signing.BadSignature, KeyError, TypeError):
        return render(request, "portal/register_invalid.html", {"expired": True}, status=400)
    if not register_claimable(user_get_by_email(email=email)):
        return render(request, "portal/register_invalid.html", {"expired": False}, status=400)
    form = RegisterPasswordForm(email=email, name=name, data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = form.save()
        except ValidationError:
            return render(request, "portal/register_invalid.html", {"expired": False}, status=400)
        login(request, user, backend="accounts.backends.ModelBackend")
        messages.success(
            request,
            _("Welcome! Your account is ready; you sign in with %(email)s.")
            % {"email": user.email},
        )
        return redirect("tickets_portal:list")
    return render(request, "portal/register_verify.html", {"form": form, "email": email})


class PortalPasswordResetView(auth_views.PasswordResetView):
    form_class = PortalPasswordResetForm
    template_name = "portal/password_reset_form.html"
    email_template_name = "portal/email/password_reset_body.txt"
    subject_template_name = "portal/email/password_reset_subject.txt"
    success_url = reverse_lazy("portal:password_reset_done")

    def form_valid(self, form: PortalPasswordResetForm) -> HttpResponse:
        limit = settings.HELPDESK_PORTAL_EMAIL_LIMIT
        if portal_rate_limited(self.request, "email", limit):
            return _too_many(self.request, self.template_name, form)
        email = form.cleaned_data["email"]
        if not any(True for _user in form.get_users(email)):
            # A customer who only ever wrote in by email has no password to reset: the same
            # page, and a link to set one up instead (the verification is the same).
            user = user_get_by_email(email=email)
            if user is not None and register_claimable(user):
                registration_link_send(email=user.email, name=user.name)
        return super().form_valid(form)


class PortalLoginView(auth_views.LoginView):
    template_name = "portal/login.html"
    authentication_form = PortalLoginForm
    redirect_authenticated_user = True


class StaffLoginView(auth_views.LoginView):
    template_name = "staff/login.html"
    authentication_form = StaffLoginForm
    redirect_authenticated_user = False
    next_page = reverse_lazy("staff:home")
