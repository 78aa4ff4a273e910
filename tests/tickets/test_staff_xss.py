"""The public XSS payloads of tests/portal/test_xss.py in every field a customer or an
email controls, as agents see them: the ticket page (thread, customer card, audit trail),
the queue, its search results and the dashboard. None survives as markup."""

import pytest
from django.urls import reverse

from tests.accounts.factories import UserFactory
from tests.portal.test_xss import PAYLOADS, dangers
from tests.tickets.factories import open_ticket
from tickets.models import BodyFormat, Ticket
from tickets.services import AttachmentUpload, ticket_message_add

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("payload", PAYLOADS)
def test_no_payload_survives_in_the_staff_ui(client, agent, department, payload):
    owner = UserFactory(name=payload[:150], phone=payload[:32], notes=payload)
    ticket = open_ticket(
        user=owner,
        department=department,
        subject=payload,
        body=payload,
        attachments=[AttachmentUpload(f"{payload}.txt", b"x", "text/plain")],
    )
    for body_format in (BodyFormat.MARKDOWN, BodyFormat.HTML):
        ticket_message_add(ticket=ticket, user=owner, body=payload, body_format=body_format)
    Ticket.objects.filter(pk=ticket.pk).update(assignee=agent)
    client.force_login(agent)
    page = reverse("tickets_staff:ticket", args=[ticket.number])
    for url in (
        page,
        f"{page}?history=1",
        reverse("tickets_staff:queue_default"),
        reverse("tickets_staff:queue_default") + "?q=alert",
        reverse("staff:home"),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert dangers(response.content.decode()) == [], url
