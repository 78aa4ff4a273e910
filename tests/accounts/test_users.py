"""Users: one login per address whatever its case, extra addresses, organizations."""

import pytest
from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, connection

from accounts.models import User, UserEmail
from accounts.permissions import PERMISSIONS, can, is_agent
from accounts.services import user_email_add, user_get_or_create_by_email
from tests.accounts.factories import OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_the_address_is_the_login_whatever_its_case():
    user = User.objects.create_user("Mixed.Case@Example.COM", "correct horse battery")
    assert user.email == "mixed.case@example.com"
    assert authenticate(username="MIXED.case@example.com", password="correct horse battery") == user


def test_two_users_cannot_share_an_address_in_another_case():
    User.objects.create_user("bob@example.com")
    with pytest.raises(IntegrityError):
        User.objects.create_user("BOB@example.com")


@pytest.mark.skipif(
    connection.vendor == "mysql",
    reason="MariaDB compares under a case-insensitive collation, which makes the check moot: "
    "there uniqueness is case-insensitive through the collation itself",
)
def test_the_database_refuses_an_address_in_upper_case():
    user = UserFactory()
    with pytest.raises(IntegrityError):
        User.objects.filter(pk=user.pk).update(email="Upper@Example.com")


def test_every_user_has_their_address_as_primary():
    user = UserFactory(email="me@example.com")
    assert list(user.emails.values_list("email", "is_primary")) == [("me@example.com", True)]


def test_an_extra_address_finds_the_same_user():
    user = UserFactory(email="me@example.com")
    user_email_add(user=user, email="Me@Work.example")
    assert user_get_or_create_by_email(email="ME@work.example") == user
    assert UserEmail.objects.filter(user=user).count() == 2


def test_an_address_belongs_to_one_user_only():
    UserFactory(email="taken@example.com")
    with pytest.raises(ValidationError) as error:
        user_email_add(user=UserFactory(), email="Taken@example.com")
    assert "email" in error.value.message_dict


def test_a_customer_who_only_emailed_cannot_sign_in():
    user = user_get_or_create_by_email(email="mailer@example.com", name="Mailer")
    assert not user.has_usable_password()
    assert authenticate(username="mailer@example.com", password="") is None


def test_new_customers_join_their_domains_organization():
    acme = OrganizationFactory(domains=["acme.example"])
    assert user_get_or_create_by_email(email="a@acme.example").organization == acme
    assert user_get_or_create_by_email(email="a@other.example").organization is None


def test_a_domain_added_later_counts_for_the_next_new_customer():
    assert user_get_or_create_by_email(email="first@late.example").organization is None
    late = OrganizationFactory(domains=["late.example"])
    assert user_get_or_create_by_email(email="second@late.example").organization == late
    late.domains.all().delete()
    assert user_get_or_create_by_email(email="third@late.example").organization is None


def test_createsuperuser_makes_a_help_desk_administrator(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a long admin password")
    call_command("createsuperuser", "--noinput", email="Root@Example.com", verbosity=0)
    admin = User.objects.get(email="root@example.com")
    assert is_agent(admin)
    assert all(can(admin, permission) for permission in PERMISSIONS)
    assert admin.emails.get().is_primary


def test_unknown_time_zones_are_refused():
    user = UserFactory()
    user.timezone = "Mars/Olympus_Mons"
    with pytest.raises(ValidationError) as error:
        user.full_clean()
    assert "timezone" in error.value.message_dict
    user.timezone = "Europe/Berlin"
    user.full_clean()


def test_roles_refuse_unknown_permissions():
    from accounts.models import Role

    role = Role(name="Odd", permissions=["ticket.reply", "ticket.teleport"])
    with pytest.raises(ValidationError) as error:
        role.full_clean()
    assert "ticket.teleport" in str(error.value)


def test_the_shipped_roles_hold_only_known_permissions():
    from accounts.models import Role

    names = set(Role.objects.values_list("name", flat=True))
    assert {
        "All Access",
        "Expanded Access",
        "Limited Access",
        "View Only",
        "Administrator",
    } <= names
    for role in Role.objects.all():
        role.full_clean()
