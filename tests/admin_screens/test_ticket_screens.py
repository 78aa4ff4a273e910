"""Statuses and priorities."""

import pytest
from django.urls import reverse

from helpdesk.models import AdminLogEntry
from tests.tickets.factories import open_ticket, priority, status
from tickets.models import Priority, StatusState, TicketStatus

pytestmark = pytest.mark.django_db


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_an_admin_adds_a_status(admin_client):
    response = admin_client.post(
        reverse("staff_admin:status_create"),
        {"name": "Waiting on vendor", "state": "open", "pauses_sla": "on"},
    )
    assert response.status_code == 302
    created = TicketStatus.objects.get(name="Waiting on vendor")
    assert created.state == StatusState.OPEN and created.pauses_sla
    page = admin_client.get(reverse("staff_admin:status_list")).content.decode()
    assert "Waiting on vendor" in page


def test_a_new_default_status_takes_over_from_the_old_one(admin_client):
    old = TicketStatus.objects.get(state=StatusState.OPEN, is_default=True)
    admin_client.post(
        reverse("staff_admin:status_create"),
        {"name": "New", "state": "open", "is_default": "on"},
    )
    old.refresh_from_db()
    assert not old.is_default
    assert TicketStatus.objects.get(state=StatusState.OPEN, is_default=True).name == "New"
    assert AdminLogEntry.objects.filter(object_repr=old.name, action="update").exists()


def test_the_default_status_cannot_be_deleted_or_unset(admin_client):
    default = TicketStatus.objects.get(state=StatusState.OPEN, is_default=True)
    response = admin_client.post(
        reverse("staff_admin:status_delete", args=[default.pk]), follow=True
    )
    assert "is a default; make another one the default first." in _messages(response)[0]
    response = admin_client.post(
        reverse("staff_admin:status_edit", args=[default.pk]),
        {"name": default.name, "state": "open"},
    )
    assert "Make another status of this state the default instead." in response.content.decode()
    default.refresh_from_db()
    assert default.is_default


def test_a_status_in_use_keeps_its_state_and_cannot_be_deleted(admin_client, department):
    custom = TicketStatus.objects.create(name="Vendor hold", state=StatusState.OPEN)
    ticket = open_ticket(department=department)
    ticket.status = custom
    ticket.save(update_fields=["status"])
    response = admin_client.post(
        reverse("staff_admin:status_edit", args=[custom.pk]),
        {"name": "Vendor hold", "state": "closed"},
    )
    assert "Tickets have this status, so its state stays" in response.content.decode()
    response = admin_client.post(
        reverse("staff_admin:status_delete", args=[custom.pk]), follow=True
    )
    assert _messages(response)[0].startswith("Vendor hold cannot be deleted: it is used by 1")
    assert TicketStatus.objects.filter(pk=custom.pk).exists()


def test_statuses_are_reordered(admin_client):
    first = status("Open")
    names_before = list(TicketStatus.objects.values_list("name", flat=True))
    admin_client.post(reverse("staff_admin:status_move", args=[first.pk]), {"direction": "down"})
    names_after = list(TicketStatus.objects.values_list("name", flat=True))
    index = names_before.index("Open")
    assert names_after.index("Open") == index + 1


def test_an_admin_adds_a_priority_and_makes_it_the_default(admin_client):
    old_default = Priority.objects.get(is_default=True)
    response = admin_client.post(
        reverse("staff_admin:priority_create"),
        {"name": "Trivial", "urgency": 99, "color": "#00ff00", "is_default": "on"},
    )
    assert response.status_code == 302
    trivial = Priority.objects.get(name="Trivial")
    assert trivial.color == "#00FF00" and trivial.is_default
    old_default.refresh_from_db()
    assert not old_default.is_default


def test_priority_urgency_is_unique(admin_client):
    response = admin_client.post(
        reverse("staff_admin:priority_create"),
        {"name": "Clash", "urgency": priority("High").urgency, "color": "#000000"},
    )
    assert "Priority with this Urgency already exists." in response.content.decode()


def test_a_bad_colour_is_refused(admin_client):
    response = admin_client.post(
        reverse("staff_admin:priority_create"),
        {"name": "Odd", "urgency": 77, "color": "#GG0000"},
    )
    assert "Use a colour such as #FF8800." in response.content.decode()
    assert not Priority.objects.filter(name="Odd").exists()


def test_a_priority_in_use_cannot_be_deleted(admin_client, department):
    ticket = open_ticket(department=department)
    used = ticket.priority
    if used.is_default:
        used = Priority.objects.exclude(pk=used.pk).first()
        ticket.priority = used
        ticket.save(update_fields=["priority"])
    response = admin_client.post(
        reverse("staff_admin:priority_delete", args=[used.pk]), follow=True
    )
    assert "cannot be deleted: it is used by 1 ticket" in _messages(response)[0]


def test_an_admin_renames_a_priority(admin_client):
    high = priority("High")
    response = admin_client.post(
        reverse("staff_admin:priority_edit", args=[high.pk]),
        {"name": "Important", "urgency": high.urgency, "color": high.color},
    )
    assert response.status_code == 302
    high.refresh_from_db()
    assert high.name == "Important"
    entry = AdminLogEntry.objects.get(object_type="tickets.priority")
    assert entry.changes == {"name": ["High", "Important"]}
