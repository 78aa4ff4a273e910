"""`manage.py generate_data`: a large data set written in bulk, still shaped like real use."""

from io import StringIO

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db.models import Count, Q
from django.utils import timezone

from accounts.models import Agent, User
from accounts.permissions import can, visible_tickets
from helpdesk.lib.sanitize import render_body
from tickets.management.commands.generate_data import (
    AGENT_EMAIL,
    CUSTOMER_EMAIL,
    DEFAULT_PASSWORD,
    LONG_THREAD,
    SEARCH_WORD,
)
from tickets.models import (
    Attachment,
    EntryKind,
    EventAction,
    StatusState,
    ThreadEntry,
    ThreadEvent,
    Ticket,
)
from tickets.search import document_build, tickets_search

pytestmark = pytest.mark.django_db


@pytest.fixture
def generated():
    out = StringIO()
    call_command("generate_data", tickets=30, seed=7, stdout=out)
    return out.getvalue()


def long_ticket_number(output: str) -> str:
    line = next(ln for ln in output.splitlines() if ln.startswith(f"Ticket with {LONG_THREAD}"))
    return line.rsplit(" ", 1)[1]


def test_prints_timing_logins_and_the_long_ticket(generated):
    assert "Generated 30 tickets in" in generated
    assert f"{AGENT_EMAIL} / {DEFAULT_PASSWORD}" in generated
    assert f"{CUSTOMER_EMAIL} / {DEFAULT_PASSWORD}" in generated
    number = long_ticket_number(generated)
    ticket = Ticket.objects.get(number=number)
    assert ThreadEntry.objects.filter(thread__ticket=ticket).count() == LONG_THREAD
    # The long thread carries images, for the ticket page's thumbnails.
    assert Attachment.objects.filter(entry__thread__ticket=ticket, content_type="image/png")


def test_printed_logins_sign_in(generated, client):
    assert client.login(email=AGENT_EMAIL, password=DEFAULT_PASSWORD)
    assert client.login(email=CUSTOMER_EMAIL, password=DEFAULT_PASSWORD)
    assert User.objects.get(email=CUSTOMER_EMAIL).organization is not None


def test_every_ticket_has_a_thread_of_three_to_ten_entries_opened_by_its_customer(generated):
    long_number = long_ticket_number(generated)
    tickets = Ticket.objects.select_related("user").annotate(n=Count("thread__entries"))
    assert tickets.count() == 30
    assert len({t.number for t in tickets}) == 30
    for ticket in tickets:
        if ticket.number != long_number:
            assert 3 <= ticket.n <= 10, ticket.number
        entries = list(ThreadEntry.objects.filter(thread__ticket=ticket).order_by("created_at"))
        assert entries[0].kind == EntryKind.MESSAGE
        assert entries[0].author_id == ticket.user_id
        assert entries[0].created_at == ticket.created_at
        assert entries[-1].created_at <= ticket.updated_at <= timezone.now()
        for entry in entries:
            if entry.kind == EntryKind.MESSAGE:
                assert entry.author_id == ticket.user_id
            else:
                assert Agent.objects.filter(user_id=entry.author_id).exists()


def test_rendered_bodies_equal_the_sanitisers_rendering(generated):
    entries = ThreadEntry.objects.all()
    assert {e.kind for e in entries} == set(EntryKind.values)
    for entry in entries:
        assert entry.body_html == str(render_body(entry.body, entry.body_format)), entry.pk


def test_search_documents_are_built_and_searchable(generated):
    for ticket in Ticket.objects.select_related("user"):
        bodies = ThreadEntry.objects.filter(thread__ticket=ticket).order_by("created_at", "pk")
        expected = document_build(ticket, bodies.values_list("body", "body_format"))
        assert ticket.search_document == expected, ticket.number
    found = tickets_search(Ticket.objects.all(), SEARCH_WORD)
    assert found.filter(number=long_ticket_number(generated)).exists()
    assert found.count() < 30  # a common word, not every ticket


def test_events_record_creation_and_every_later_entry(generated):
    for ticket in Ticket.objects.all():
        events = ThreadEvent.objects.filter(thread__ticket=ticket)
        assert events.filter(action=EventAction.CREATED).count() == 1
        later = ThreadEntry.objects.filter(thread__ticket=ticket).order_by("created_at")[1:]
        logged = {e.data.get("entry") for e in events.exclude(data__entry=None)}
        assert {entry.pk for entry in later} <= logged
        if ticket.status.state != StatusState.OPEN:
            assert ticket.closed_at is not None
            assert events.filter(action=EventAction.CLOSED).exists()


def test_due_dates_and_overdue_flags_follow_the_sla(generated):
    now = timezone.now()
    tickets = Ticket.objects.select_related("status")
    assert all(t.sla_id and t.due_at for t in tickets)
    for ticket in tickets:
        if ticket.status.state != StatusState.OPEN:
            assert not ticket.is_overdue and ticket.sla_paused_at is None
        elif ticket.status.pauses_sla:  # the clock stopped when it began waiting
            assert ticket.sla_paused_at is not None
            assert ticket.is_overdue == (ticket.due_at < ticket.sla_paused_at), ticket.number
        else:
            assert ticket.is_overdue == (ticket.due_at < now), ticket.number
        assert ticket.first_response_due_at <= ticket.resolution_due_at


def test_attachments_point_at_stored_files(generated):
    attachments = Attachment.objects.all()
    assert attachments
    for attachment in attachments:
        assert default_storage.exists(attachment.file.name)
        assert default_storage.size(attachment.file.name) == attachment.size


def test_the_benchmark_agent_sees_every_ticket(generated):
    agent = User.objects.get(email=AGENT_EMAIL)
    assert visible_tickets(agent).count() == 30


def test_assignees_may_see_their_tickets(generated):
    assigned = Ticket.objects.filter(assignee__isnull=False).select_related("assignee")
    assert assigned
    for ticket in assigned:
        assert can(ticket.assignee, "ticket.view", ticket)


def test_customers_see_their_own_and_their_shared_organizations_tickets(generated):
    customer = User.objects.select_related("organization").get(email=CUSTOMER_EMAIL)
    assert customer.organization.share_tickets
    seen = set(visible_tickets(customer).values_list("pk", flat=True))
    expected = set(
        Ticket.objects.filter(
            Q(user=customer)
            | Q(organization=customer.organization)
            | Q(collaborators__user=customer)
        )
        .exclude(status__state=StatusState.DELETED)
        .values_list("pk", flat=True)
    )
    assert seen == expected
    assert Ticket.objects.filter(user=customer).count() >= 5
    assert len(seen) < 30


def test_an_agent_of_one_department_does_not_see_the_others_unassigned_tickets(generated):
    agent = (
        Agent.objects.filter(department_access__isnull=True, teams__isnull=True)
        .exclude(user__email=AGENT_EMAIL)
        .select_related("user")
        .first()
    )
    assert agent is not None
    seen = set(visible_tickets(agent.user).values_list("pk", flat=True))
    elsewhere = Ticket.objects.exclude(department=agent.department_id).exclude(assignee=agent.user)
    assert elsewhere.exists()
    assert not seen & set(elsewhere.values_list("pk", flat=True))


def test_refuses_a_help_desk_that_has_tickets(generated):
    with pytest.raises(CommandError, match="already has tickets"):
        call_command("generate_data", tickets=5, stdout=StringIO())
    assert Ticket.objects.count() == 30


def test_rejects_an_entry_range_beyond_the_long_thread():
    with pytest.raises(CommandError, match="entries-max"):
        call_command("generate_data", tickets=5, entries_max=LONG_THREAD + 1, stdout=StringIO())
    assert not Ticket.objects.exists()
