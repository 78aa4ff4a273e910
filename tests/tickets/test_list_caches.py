"""The counts and pages the lists keep in the cache (helpdesk.lib.querycache) and the agent
scopes kept per process (accounts.permissions.SCOPES): served again while nothing changed,
and never stale after a change commits. These tests commit, as production does."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import AgentDepartmentAccess
from helpdesk.lib import fragments
from sla.jobs import overdue_check
from tests.accounts.factories import OrganizationFactory, UserFactory, agent_user, role
from tests.routing.factories import DepartmentFactory, TeamFactory
from tests.tickets.factories import closed_status, open_ticket
from tickets.models import Ticket
from tickets.services import ticket_status_set

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

QUEUE = reverse("tickets_staff:queue_default")
DASHBOARD = reverse("staff:home")
MY_TICKETS = reverse("tickets_portal:list")


@pytest.fixture(autouse=True)
def _empty_cache(settings, monkeypatch):
    # The tests run in one process: its cache is shared by every request they make.
    settings.HELPDESK_QUERY_CACHE = True
    # Fragments are kept per minute: a test must not see a new minute between two requests.
    monkeypatch.setattr(fragments, "minute", lambda: "202612041200")
    cache.clear()
    yield
    cache.clear()


def listed(response):
    return [ticket.number for ticket in response.context["page"].object_list]


def queries(client, url):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return response, [query["sql"] for query in captured.captured_queries]


def test_the_queue_count_and_page_come_from_the_cache_until_a_ticket_changes(client):
    department = DepartmentFactory(name="Front line")
    agent = agent_user(department=department)
    tickets = [open_ticket(department=department) for _ in range(3)]
    client.force_login(agent)

    _first, first_sql = queries(client, QUEUE)
    again, again_sql = queries(client, QUEUE)
    assert sorted(listed(again)) == sorted(t.number for t in tickets)
    assert again.context["page"].paginator.count == 3
    assert any("COUNT(" in sql for sql in first_sql)
    assert not any("COUNT(" in sql for sql in again_sql)
    assert len(again_sql) < len(first_sql)

    # An agent closes one: the next page view counts again.
    ticket_status_set(ticket=tickets[0], by=agent, status=closed_status())
    after, after_sql = queries(client, QUEUE)
    assert any("COUNT(" in sql for sql in after_sql)
    assert after.context["page"].paginator.count == 2
    assert tickets[0].number not in listed(after)
    # A customer opens a new one.
    new = open_ticket(department=department)
    assert new.number in listed(client.get(QUEUE))


def test_the_overdue_job_refreshes_the_overdue_queue(client):
    """The SLA jobs change tickets with one UPDATE (no signals) and say so themselves."""
    department = DepartmentFactory(name="Front line")
    agent = agent_user(department=department)
    ticket = open_ticket(department=department)
    client.force_login(agent)
    overdue = reverse("tickets_staff:queue", args=["overdue"])
    assert listed(client.get(overdue)) == []
    Ticket.objects.filter(pk=ticket.pk).update(due_at=timezone.now() - timedelta(hours=1))

    assert overdue_check().marked == [ticket.pk]

    assert listed(client.get(overdue)) == [ticket.number]


def test_agents_with_other_departments_never_share_a_cached_page(client):
    support, sales = DepartmentFactory(name="Front line"), DepartmentFactory(name="Field sales")
    support_agent = agent_user(department=support)
    sales_agent = agent_user(department=sales)
    mine = open_ticket(department=support)
    theirs = open_ticket(department=sales)

    client.force_login(support_agent)
    assert listed(client.get(QUEUE)) == [mine.number]
    client.force_login(sales_agent)
    assert listed(client.get(QUEUE)) == [theirs.number]
    client.force_login(support_agent)
    assert listed(client.get(QUEUE)) == [mine.number]


def test_losing_a_department_takes_its_tickets_away_at_once(client):
    support, sales = DepartmentFactory(name="Front line"), DepartmentFactory(name="Field sales")
    agent = agent_user(department=support)
    AgentDepartmentAccess.objects.create(
        agent=agent.agent, department=sales, role=role("All Access")
    )
    theirs = open_ticket(department=sales)
    client.force_login(agent)
    assert listed(client.get(QUEUE)) == [theirs.number]
    assert client.get(reverse("tickets_staff:ticket", args=[theirs.number])).status_code == 200

    AgentDepartmentAccess.objects.filter(agent=agent.agent, department=sales).delete()

    assert listed(client.get(QUEUE)) == []
    assert client.get(reverse("tickets_staff:ticket", args=[theirs.number])).status_code == 404


def test_leaving_a_team_takes_its_tickets_away_at_once(client):
    support, sales = DepartmentFactory(name="Front line"), DepartmentFactory(name="Field sales")
    agent = agent_user(department=support)
    team = TeamFactory(name="Escalations")
    team.members.add(agent.agent)
    theirs = open_ticket(department=sales)
    Ticket.objects.filter(pk=theirs.pk).update(team=team)
    client.force_login(agent)
    assert listed(client.get(QUEUE)) == [theirs.number]

    page = reverse("tickets_staff:ticket", args=[theirs.number])
    assert client.get(page).status_code == 200

    team.members.remove(agent.agent)

    assert listed(client.get(QUEUE)) == []
    assert client.get(page).status_code == 404


def test_the_dashboard_counts_follow_new_tickets(client):
    department = DepartmentFactory(name="Front line")
    agent = agent_user(department=department)
    open_ticket(department=department)
    client.force_login(agent)
    assert client.get(DASHBOARD).context["counts"].open == 1
    _, again_sql = queries(client, DASHBOARD)
    assert not any("COUNT(" in sql for sql in again_sql)
    open_ticket(department=department)
    assert client.get(DASHBOARD).context["counts"].open == 2


def test_a_customer_sees_an_organization_ticket_once_sharing_is_turned_on(client):
    org = OrganizationFactory(share_tickets=False)
    customer = UserFactory(organization=org)
    colleague = UserFactory(organization=org)
    own = open_ticket(user=customer)
    shared = open_ticket(user=colleague)
    client.force_login(customer)
    assert listed(client.get(MY_TICKETS)) == [own.number]
    assert listed(client.get(MY_TICKETS)) == [own.number]

    org.share_tickets = True
    org.save(update_fields=["share_tickets"])

    assert listed(client.get(MY_TICKETS)) == [shared.number, own.number]


def agent_on_the_queue(client):
    """An agent of a department with one ticket, signed in, who has opened the queue once."""
    department = DepartmentFactory(name="Front line")
    agent = agent_user(department=department)
    open_ticket(department=department)
    client.force_login(agent)
    queries(client, QUEUE)
    return department


def test_with_the_query_cache_off_every_view_counts_again(client, settings):
    settings.HELPDESK_QUERY_CACHE = False
    agent_on_the_queue(client)
    _, again_sql = queries(client, QUEUE)
    assert any("COUNT(" in sql for sql in again_sql)


def on_a_ticket_page(client, **ticket_fields):
    """An agent of a new department signed in, a new ticket there and its staff page."""
    department = DepartmentFactory(name="Front line")
    agent = agent_user(department=department)
    ticket = open_ticket(department=department, **ticket_fields)
    client.force_login(agent)
    return agent, ticket, reverse("tickets_staff:ticket", args=[ticket.number])


def steady_queries(client, url, params=None):
    """Queries of a request once everything it may keep is kept (a warm-up request first)."""
    client.get(url, params or {})
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params or {})
    assert response.status_code == 200
    return response, len(captured.captured_queries)


@pytest.mark.parametrize("params", [{}, {"q": "printer"}])
def test_a_warm_queue_page_runs_two_queries_for_3_or_30_tickets(client, params):
    """As in production: session and user (the page's count and rows are kept)."""
    department = DepartmentFactory(name="Front line")
    team = TeamFactory(name="Escalations")
    agent = agent_user(department=department)
    team.members.add(agent.agent)
    for _ in range(3):
        open_ticket(department=department, subject="printer jam", assignee=agent, by=agent)
    client.force_login(agent)
    _, few = steady_queries(client, QUEUE, params)
    for _ in range(27):
        open_ticket(department=department, subject="printer jam", team=team, by=agent)
    response, many = steady_queries(client, QUEUE, {**params, "per_page": 50})
    assert len(listed(response)) == 30
    assert few == many == 2


def test_a_warm_ticket_page_runs_two_queries_for_2_or_40_entries(client):
    """Session and user: the ticket, its rendered thread, the action forms' options, the
    people on the ticket and the customer's other tickets are kept."""
    from tickets.services import ticket_message_add, ticket_note_add

    customer = UserFactory()
    agent, ticket, page = on_a_ticket_page(client, user=customer)
    ticket_note_add(ticket=ticket, by=agent, body="first note")
    _, few = steady_queries(client, page)
    for index in range(19):
        ticket_note_add(ticket=ticket, by=agent, body=f"note {index}")
        ticket_message_add(ticket=ticket, user=customer, body=f"message {index}")
    response, many = steady_queries(client, page)
    assert response.content.decode().count("message 18") == 1
    assert few == many == 2


def test_a_warm_dashboard_and_customer_list_run_few_queries(client):
    department = DepartmentFactory(name="Front line")
    agent = agent_user(department=department)
    customer = UserFactory()
    for _ in range(3):
        open_ticket(department=department, user=customer, assignee=agent, by=agent)
    client.force_login(agent)
    _, dashboard = steady_queries(client, DASHBOARD)
    client.force_login(customer)
    _, my_tickets = steady_queries(client, MY_TICKETS)
    # session, user, the departments' names / session, user (the page is kept)
    assert (dashboard, my_tickets) == (3, 2)


def test_the_ticket_page_offers_a_new_agent_and_status_at_once(client):
    from tickets.models import StatusState, TicketStatus

    department = DepartmentFactory(name="Front line")
    agent = agent_user(department=department)
    ticket = open_ticket(department=department)
    page = reverse("tickets_staff:ticket", args=[ticket.number])
    client.force_login(agent)
    assert "Newcomer Agent" not in client.get(page).content.decode()
    client.get(page)

    agent_user(department=department, user__name="Newcomer Agent")
    TicketStatus.objects.create(name="Waiting on Vendor", state=StatusState.OPEN, sort_order=9)

    html = client.get(page).content.decode()
    assert "Newcomer Agent" in html and "Waiting on Vendor" in html


def test_kept_queue_rows_follow_names_and_priorities(client):
    """Rows are kept in the cache under everything they show."""
    from tickets.models import Priority
    from tickets.services import ticket_priority_set

    department = DepartmentFactory(name="Front line")
    agent = agent_user(department=department)
    customer = UserFactory(name="Ada Before")
    ticket = open_ticket(department=department, user=customer)
    client.force_login(agent)
    assert "Ada Before" in client.get(QUEUE).content.decode()

    customer.name = "Ada After"
    customer.save(update_fields=["name"])
    urgent = Priority.objects.exclude(urgency=ticket.priority.urgency).first()
    assert f"priority-{urgent.urgency}" not in client.get(QUEUE).content.decode()
    ticket_priority_set(ticket=ticket, by=agent, priority=urgent)

    html = client.get(QUEUE).content.decode()
    assert "Ada After" in html and "Ada Before" not in html
    assert f"priority-{urgent.urgency}" in html


def test_a_warm_queue_page_reads_the_cache_a_fixed_few_times(client, monkeypatch):
    """Every version token a request needs comes in one read (helpdesk.lib.memo)."""
    department = DepartmentFactory(name="Front line")
    agent = agent_user(department=department)
    for _ in range(3):
        open_ticket(department=department)
    client.force_login(agent)
    client.get(QUEUE)
    reads = []
    depth = [0]

    def counted(original):
        def read(*args, **kwargs):
            if not depth[0]:  # the local cache's get_many calls its own get
                reads.append(args[0])
            depth[0] += 1
            try:
                return original(*args, **kwargs)
            finally:
                depth[0] -= 1

        return read

    for name in ("get", "get_many"):
        monkeypatch.setattr(cache, name, counted(getattr(cache, name)))
    client.get(QUEUE)
    # the tokens (the settings row's among them), the page (count and rows), the rendered
    # rows (sessions are in the database with the tests' per-process cache)
    assert len(reads) == 3


def test_the_ticket_page_shows_a_new_collaborator_and_address_at_once(client):
    from accounts.models import UserEmail
    from tickets.services import ticket_collaborator_add

    customer = UserFactory()
    agent, ticket, page = on_a_ticket_page(client, user=customer)
    client.get(page)
    client.get(page)

    ticket_collaborator_add(ticket=ticket, by=agent, user=UserFactory(email="copied@example.com"))
    UserEmail.objects.create(user=customer, email="second@example.com")

    html = client.get(page).content.decode()
    assert "copied@example.com" in html and "second@example.com" in html


def test_the_kept_thread_follows_new_entries_and_removed_files(client):
    from django.core.files.base import ContentFile

    from tickets.models import Attachment, ThreadEntry
    from tickets.services import ticket_note_add

    agent, ticket, page = on_a_ticket_page(client)
    ticket_note_add(ticket=ticket, by=agent, body="first look")
    entry = ThreadEntry.objects.get(thread__ticket=ticket, body="first look")
    Attachment.objects.create(
        entry=entry,
        file=ContentFile(b"log line", name="server.log"),
        content_hash="0" * 64,
        name="server.log",
        content_type="text/plain",
        size=8,
    )
    client.get(page)
    html = client.get(page).content.decode()
    assert "first look" in html and "server.log" in html

    ticket_note_add(ticket=ticket, by=agent, body="second look")
    Attachment.objects.filter(entry=entry).delete()

    html = client.get(page).content.decode()
    assert "second look" in html
    assert "server.log" not in html


def kept_pages_in_two_browsers(agent, url):
    """(browser, page's HTML, its CSRF tokens) as one agent sees `url` in two browsers, the
    second time from the cache (checked: no query but session and user)."""
    import re

    from django.test import Client

    browsers = [Client(enforce_csrf_checks=True) for _ in range(2)]
    for browser in browsers:
        browser.force_login(agent)
    pages = [browser.get(url).content.decode() for browser in browsers]
    with CaptureQueriesContext(connection) as captured:
        pages.append(browsers[1].get(url).content.decode())
    assert len(captured) == 2  # session and user: the page was kept
    seen = []
    for browser, html in zip([browsers[0], browsers[1], browsers[1]], pages, strict=True):
        assert "csrf0placeholder" not in html
        tokens = set(re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', html))
        assert len(tokens) == 2  # the page's forms and the layout's sign-out form
        seen.append((browser, html, tokens))
    return seen


def test_a_kept_ticket_page_carries_each_sessions_own_csrf_token():
    """One agent in two browsers: the second gets the page from the cache, with forms that
    post under its own session (the token is put in per request, never kept)."""
    from tickets.models import ThreadEntry

    department = DepartmentFactory(name="Front line")
    agent = agent_user(department=department)
    ticket = open_ticket(department=department)
    page = reverse("tickets_staff:ticket", args=[ticket.number])
    posted = 0
    for browser, _html, tokens in kept_pages_in_two_browsers(agent, page):
        for token in tokens:
            response = browser.post(
                reverse("tickets_staff:note", args=[ticket.number]),
                {"csrfmiddlewaretoken": token, "note-body": "checked the logs"},
            )
            assert response.status_code == 302
            posted += 1
    notes = ThreadEntry.objects.filter(thread__ticket=ticket, body="checked the logs")
    assert notes.count() == posted == 6


def test_a_kept_queue_page_carries_each_sessions_own_csrf_token():
    department = DepartmentFactory(name="Front line")
    agent = agent_user(department=department)
    open_ticket(department=department)
    for browser, _html, tokens in kept_pages_in_two_browsers(agent, QUEUE):
        for token in tokens:
            response = browser.post(
                reverse("tickets_staff:bulk"), {"csrfmiddlewaretoken": token, "action": "status"}
            )
            assert response.status_code != 403  # refused for the missing tickets, not CSRF


def test_the_kept_ticket_page_outlives_changes_of_other_tickets(client):
    """The ticket page is kept per ticket: another ticket's change (a note, a new status)
    leaves it kept; a change of its own shows at once."""
    from tickets.services import ticket_note_add

    agent, ticket, page = on_a_ticket_page(client)
    other = open_ticket(department=ticket.department)
    steady_queries(client, page)

    ticket_note_add(ticket=other, by=agent, body="elsewhere")
    ticket_status_set(ticket=other, by=agent, status=closed_status())
    _, after_other = queries(client, page)
    assert len(after_other) == 2  # session and user: the page stayed kept

    ticket_note_add(ticket=ticket, by=agent, body="right here")
    assert "right here" in client.get(page).content.decode()


def test_the_customer_card_follows_the_customers_other_tickets(client):
    from tickets.services import ticket_subject_edit

    customer = UserFactory()
    agent, ticket, page = on_a_ticket_page(client, user=customer)
    other = open_ticket(department=ticket.department, user=customer, subject="Old subject")
    assert "Old subject" in client.get(page).content.decode()

    ticket_subject_edit(ticket=other, by=agent, subject="Toner everywhere")

    html = client.get(page).content.decode()
    assert "Toner everywhere" in html and "Old subject" not in html


def test_the_kept_ticket_page_follows_the_overdue_job_and_renamed_statuses(client):
    """The SLA job updates tickets without signals and names them; a status's new name
    changes every ticket page."""
    from tickets.models import TicketStatus

    _agent, ticket, page = on_a_ticket_page(client)
    Ticket.objects.filter(pk=ticket.pk).update(due_at=timezone.now() - timedelta(hours=1))
    page += "?history=1"
    steady_queries(client, page)
    assert 'class="event event-overdue"' not in client.get(page).content.decode()

    assert overdue_check().marked == [ticket.pk]
    assert 'class="event event-overdue"' in client.get(page).content.decode()

    status = TicketStatus.objects.get(pk=ticket.status_id)
    status.name = "Waiting on us"
    status.save()
    assert "Waiting on us" in client.get(page).content.decode()


def test_the_customer_card_shows_another_ticket_once_it_is_referred_to_the_agent(client):
    """A referral of the customer's other ticket makes it visible to the agent: the card of
    this ticket lists it at once (the referral changes no ticket row)."""
    from tickets.services import ticket_refer

    customer = UserFactory()
    _agent, ticket, page = on_a_ticket_page(client, user=customer)
    elsewhere = DepartmentFactory(name="Field sales")
    other = open_ticket(department=elsewhere, user=customer, subject="Invoice disputed")
    assert "Invoice disputed" not in client.get(page).content.decode()

    manager = agent_user(department=elsewhere)
    ticket_refer(ticket=other, by=manager, department=ticket.department)

    assert "Invoice disputed" in client.get(page).content.decode()


def test_a_referral_made_without_the_service_still_shows_in_the_card(client):
    from tickets.models import Referral

    customer = UserFactory()
    _agent, ticket, page = on_a_ticket_page(client, user=customer)
    elsewhere = DepartmentFactory(name="Field sales")
    other = open_ticket(department=elsewhere, user=customer, subject="Invoice disputed")
    assert "Invoice disputed" not in client.get(page).content.decode()

    Referral.objects.create(ticket=other, department=ticket.department)

    assert "Invoice disputed" in client.get(page).content.decode()


def test_a_new_customer_leaves_the_agents_kept_pages_choices_and_sessions(client, settings):
    """Mail from strangers makes customers all day: a new user is on no ticket and nobody's
    agent yet, so the kept queue page, the queue's choices and the signed-in users (kept
    where the cache is shared) stay kept."""
    settings.HELPDESK_SHARED_CACHE = True
    department = agent_on_the_queue(client)
    _warm, warm_sql = queries(client, QUEUE)

    UserFactory(email="stranger@example.com")
    _after, after_sql = queries(client, QUEUE)

    assert len(after_sql) == len(warm_sql)
    renamed = agent_user(department=department)
    renamed.name = "Renamed Agent"
    renamed.save(update_fields=["name"])
    _renamed, renamed_sql = queries(client, QUEUE)
    assert len(renamed_sql) > len(warm_sql)


def test_a_change_renews_the_data_version_and_its_tickets_tokens_in_one_write(monkeypatch):
    """Each committed change costs the shared cache (Redis) one round trip, not one for the
    data version and another for the tickets' own tokens."""
    from helpdesk.lib import querycache
    from tickets.services import ticket_note_add

    department = DepartmentFactory(name="Front line")
    agent = agent_user(department=department)
    ticket = open_ticket(department=department)
    before = querycache.token_get(querycache.VERSION_KEY)
    writes: list[set[str]] = []
    set_many, set_one = cache.set_many, cache.set
    many = []  # the local-memory cache's set_many calls its set for each key

    def counted_many(data, *args, **kwargs):
        writes.append({key for key in data if "querycache" in key})
        many.append(True)
        try:
            return set_many(data, *args, **kwargs)
        finally:
            many.pop()

    def counted_one(key, *args, **kwargs):
        if not many:
            writes.append({key} if "querycache" in key else set())
        return set_one(key, *args, **kwargs)

    monkeypatch.setattr(cache, "set_many", counted_many)
    monkeypatch.setattr(cache, "set", counted_one)
    ticket_note_add(ticket=ticket, by=agent, body="Checked the toner.")
    monkeypatch.undo()

    assert [keys for keys in writes if keys] == [
        {
            querycache.VERSION_KEY,
            f"{querycache.SCOPE_PREFIX}ticket:{ticket.pk}",
            f"{querycache.SCOPE_PREFIX}customer:{ticket.user_id}",
            f"{querycache.SCOPE_PREFIX}thread:{ticket.thread.pk}",
        }
    ]
    assert querycache.token_get(querycache.VERSION_KEY) != before
