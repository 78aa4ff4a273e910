"""Registering with a verified address (also claiming an email-only account), signing in
and out, and the forgotten-password loop."""

import re

import pytest
import time_machine
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from tests.accounts.factories import UserFactory
from tests.tickets.factories import open_ticket

pytestmark = pytest.mark.django_db

PASSWORD = "a sturdy horse battery"
SENT = "Check your email"


def link_in(mail, marker):
    return re.search(rf"http://\S+({marker}\S+/)", mail.body).group(1)


def register(client, email="new@customers.example", name="Nina New"):
    return client.post("/register/", {"name": name, "email": email})


def test_registering_mails_a_link_and_creates_nothing_until_it_is_followed(client, mailoutbox):
    response = register(client)
    assert response.status_code == 302 and response["Location"] == "/register/sent/"
    assert SENT in client.get("/register/sent/").content.decode()
    assert not User.objects.filter(email="new@customers.example").exists()
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["new@customers.example"]
    link = link_in(mailoutbox[0], "/register/verify/")
    page = client.get(link)
    assert page.status_code == 200 and "new@customers.example" in page.content.decode()
    done = client.post(link, {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert done.status_code == 302 and done["Location"] == reverse("tickets_portal:list")
    user = User.objects.get(email="new@customers.example")
    assert user.name == "Nina New" and user.check_password(PASSWORD)
    assert user.emails.get().is_primary
    assert client.session["_auth_user_id"] == str(user.pk)
    # The link is spent once the account has a password.
    client.logout()
    assert client.get(link).status_code == 400


def test_an_email_only_customer_claims_their_account_and_tickets(client, mailoutbox):
    existing = UserFactory(email="old@customers.example", name="")
    ticket = open_ticket(user=existing)
    assert not existing.has_usable_password()
    mailoutbox.clear()
    register(client, email="Old@Customers.example", name="Olga Old")
    link = link_in(mailoutbox[0], "/register/verify/")
    client.post(link, {"new_password1": PASSWORD, "new_password2": PASSWORD})
    existing.refresh_from_db()
    assert existing.check_password(PASSWORD) and existing.name == "Olga Old"
    assert User.objects.filter(email="old@customers.example").count() == 1
    assert ticket.number in client.get("/tickets/").content.decode()


def test_an_existing_account_gets_a_reminder_and_the_page_says_the_same(client, mailoutbox):
    UserFactory(email="has@customers.example", password=PASSWORD)
    response = register(client, email="has@customers.example")
    assert response.status_code == 302 and response["Location"] == "/register/sent/"
    assert len(mailoutbox) == 1
    assert "/register/verify/" not in mailoutbox[0].body
    assert "/password/reset/" in mailoutbox[0].body


def test_agents_cannot_be_claimed_by_registering(client, agent, mailoutbox):
    agent.set_unusable_password()
    agent.save()
    register(client, email=agent.email)
    assert all("/register/verify/" not in mail.body for mail in mailoutbox)
    token = signing.dumps({"e": agent.email, "n": "x"}, salt="accounts.portal.register")
    response = client.post(
        f"/register/verify/{token}/", {"new_password1": PASSWORD, "new_password2": PASSWORD}
    )
    assert response.status_code == 400
    agent.refresh_from_db()
    assert not agent.has_usable_password()


def test_a_forged_or_expired_link_is_refused(client, mailoutbox, settings):
    forged = signing.dumps({"e": "x@customers.example", "n": "x"}, salt="wrong")
    assert client.get(f"/register/verify/{forged}/").status_code == 400
    settings.HELPDESK_REGISTRATION_LINK_MAX_AGE = 60
    register(client)
    link = link_in(mailoutbox[0], "/register/verify/")
    with time_machine.travel(timezone.now() + timezone.timedelta(minutes=5)):
        response = client.post(link, {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert response.status_code == 400 and "expired" in response.content.decode()
    assert not User.objects.filter(email="new@customers.example").exists()


def test_a_weak_password_is_refused_with_a_message(client, mailoutbox):
    register(client)
    link = link_in(mailoutbox[0], "/register/verify/")
    response = client.post(link, {"new_password1": "12345", "new_password2": "12345"})
    assert response.status_code == 200
    assert response.context["form"].errors["new_password2"]
    assert not User.objects.filter(email="new@customers.example").exists()


def test_registration_mails_are_rate_limited(client, settings, mailoutbox):
    settings.HELPDESK_PORTAL_EMAIL_LIMIT = 1
    register(client)
    assert register(client, email="two@customers.example").status_code == 429
    assert len(mailoutbox) == 1


def test_sign_in_and_sign_out(client):
    UserFactory(email="casey@example.com", password=PASSWORD)
    client.post("/login/", {"username": "casey@example.com", "password": PASSWORD})
    assert "_auth_user_id" in client.session
    assert client.post("/logout/").status_code == 302
    assert "_auth_user_id" not in client.session


def test_the_forgotten_password_loop(client, mailoutbox, settings):
    settings.SITE_URL = "https://help.example.com"
    user = UserFactory(email="forgot@customers.example", password="an old password 123")
    response = client.post("/password/reset/", {"email": "forgot@customers.example"})
    assert response.status_code == 302 and response["Location"] == "/password/reset/sent/"
    assert len(mailoutbox) == 1
    match = re.search(r"https://help\.example\.com(/password/reset/\S+/\S+/)", mailoutbox[0].body)
    assert match, mailoutbox[0].body
    form = client.get(match.group(1), follow=True)
    assert form.status_code == 200 and form.context["validlink"]
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": PASSWORD, "new_password2": PASSWORD}
    )
    assert done.status_code == 302 and done["Location"] == "/password/reset/done/"
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_a_reset_for_an_unknown_address_looks_the_same_and_sends_nothing(client, mailoutbox):
    response = client.post("/password/reset/", {"email": "nobody@customers.example"})
    assert response.status_code == 302 and response["Location"] == "/password/reset/sent/"
    assert mailoutbox == []


def test_a_reset_for_an_email_only_customer_sends_the_set_up_link(client, mailoutbox):
    UserFactory(email="mailonly@customers.example")
    response = client.post("/password/reset/", {"email": "mailonly@customers.example"})
    assert response.status_code == 302
    assert len(mailoutbox) == 1 and "/register/verify/" in mailoutbox[0].body


def test_the_sign_in_page_links_to_register_and_reset(client):
    html = client.get("/login/").content.decode()
    assert "/register/" in html and "/password/reset/" in html
