"""Canned responses: variables render only the intended fields; the admin screens check
templates, log changes and are for admins only."""

import pytest
from django.urls import reverse

from helpdesk.models import AdminLogEntry
from kb.canned import canned_render
from kb.models import CannedResponse
from tests.kb.factories import CannedResponseFactory
from tests.tickets.factories import open_ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def ticket(department, customer):
    customer.set_password("hunter2-secret")
    customer.save()
    return open_ticket(user=customer, department=department, subject="Printer on fire")


def render(body, ticket, agent):
    return canned_render(body, ticket=ticket, agent=agent)


def test_renders_the_customer_ticket_and_agent_fields(ticket, agent):
    text = render(
        "Hi {{ customer.first_name }} ({{ customer.email }}), #{{ ticket.number }} "
        "“{{ ticket.subject }}” is {{ ticket.status }} in {{ ticket.department }}. "
        "— {{ agent.name }}",
        ticket,
        agent,
    )
    assert text == (
        f"Hi Casey (casey@customers.example), #{ticket.number} “Printer on fire” is "
        f"{ticket.status.name} in Helpdesk. — {agent.get_full_name()}"
    )


@pytest.mark.parametrize(
    "body",
    [
        "{{ ticket.customer.password }}",
        "{{ ticket.user.password }}",
        "{{ customer.password }}",
        "{{ settings.SECRET_KEY }}",
        "{{ ticket.department.signature }}",
        "{{ ticket.user }}",
        "{{ agent.is_superuser }}",
        "{{ request.user.password }}",
        "{{ customer.email.__class__ }}",
    ],
)
def test_variables_beyond_the_intended_fields_render_nothing(ticket, agent, body):
    assert render(body, ticket, agent) in ("", body)  # nothing, or refused as written
    assert render(f"a{body}b", ticket, agent) in ("ab", f"a{body}b")


@pytest.mark.parametrize(
    "body",
    [
        "{% load log %}{% get_admin_log 10 as log %}{{ log }}",
        "{% debug %}",
        "{% include 'base.html' %}",
        "{% ssi '/etc/passwd' %}",
        "{% url 'staff:login' %}",
        "{% templatetag openblock %}",
    ],
)
def test_tags_beyond_if_are_refused(ticket, agent, body):
    from django.core.exceptions import ValidationError

    from kb.canned import canned_template_check

    with pytest.raises(ValidationError):
        canned_template_check(body)
    assert render(body, ticket, agent) == body


def test_unknown_tags_are_refused_on_save(ticket, agent):
    from django.core.exceptions import ValidationError

    from kb.canned import canned_template_check

    for body in ("{% load static %}", "{% debug %}", "{{ customer.name|safe }}", "{% if %}"):
        with pytest.raises(ValidationError):
            canned_template_check(body)
    canned_template_check(
        "{% if customer.first_name %}Hi {{ customer.first_name|title }}{% endif %}"
    )


def test_rendering_escapes_nothing_and_executes_nothing(ticket, agent):
    ticket.subject = "<b>{{ agent.email }}</b>"
    assert render("{{ ticket.subject }}", ticket, agent) == "<b>{{ agent.email }}</b>"


# --- admin screens ------------------------------------------------------------------------------


LIST_URL = "/scp/admin/canned/"


def test_the_admin_menu_links_the_screen(client, admin):
    client.force_login(admin)
    assert reverse("kb_admin:canned_list") == LIST_URL
    html = client.get(reverse("staff_admin:index")).content.decode()
    assert LIST_URL in html


def test_admins_create_edit_and_delete_with_the_admin_log(client, admin, department):
    client.force_login(admin)
    response = client.post(
        LIST_URL + "new/",
        {
            "title": "Greeting",
            "department": department.pk,
            "body": "Hi {{ customer.name }}",
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    canned = CannedResponse.objects.get()
    assert canned.department == department
    response = client.post(
        f"{LIST_URL}{canned.pk}/",
        {
            "title": "Greeting",
            "department": "",
            "body": "Hello {{ customer.name }}",
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    canned.refresh_from_db()
    assert canned.department is None and canned.body.startswith("Hello")
    assert client.post(f"{LIST_URL}{canned.pk}/delete/").status_code == 302
    assert not CannedResponse.objects.exists()
    actions = list(
        AdminLogEntry.objects.filter(object_type="kb.cannedresponse")
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == ["create", "update", "delete"]
    update = AdminLogEntry.objects.get(action="update")
    assert update.changes["body"] == ["Hi {{ customer.name }}", "Hello {{ customer.name }}"]


def test_a_broken_template_is_refused_with_its_error(client, admin):
    client.force_login(admin)
    response = client.post(
        LIST_URL + "new/", {"title": "Bad", "department": "", "body": "{% load static %}"}
    )
    assert response.status_code == 200
    assert "This template has an error" in response.content.decode()
    assert not CannedResponse.objects.exists()


def test_the_list_is_paginated_with_a_fixed_number_of_queries(
    client, admin, department, django_assert_num_queries
):
    client.force_login(admin)
    for index in range(3):
        CannedResponseFactory(department=department if index % 2 else None)
    client.get(LIST_URL)  # warm the caches (admin menu, config)
    with django_assert_num_queries(7) as few:
        assert client.get(LIST_URL).status_code == 200
    for _ in range(60):
        CannedResponseFactory(department=department)
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(LIST_URL)
    assert "page=2" in response.content.decode()
    assert client.get(LIST_URL, {"page": 2}).status_code == 200


def test_agents_who_are_not_admins_get_403(client, writer):
    client.force_login(writer)
    canned = CannedResponseFactory()
    assert client.get(LIST_URL).status_code == 403
    assert client.get(LIST_URL + "new/").status_code == 403
    assert client.post(f"{LIST_URL}{canned.pk}/delete/").status_code == 403
    assert CannedResponse.objects.exists()


def test_customers_are_sent_away(client, customer):
    client.force_login(customer)
    response = client.get(LIST_URL)
    assert response.status_code == 302 and response["Location"] == reverse("portal:home")


def test_the_rendered_text_is_not_marked_safe(ticket, agent):
    from django.utils.safestring import SafeData

    assert not isinstance(render("Hi {{ customer.name }}", ticket, agent), SafeData)
