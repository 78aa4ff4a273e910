"""The staff queues at /scp/tickets/: which tickets each queue lists, filters, sorting,
search, paging, the htmx table fragment, bulk actions, and what others may not see."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from helpdesk.lib.memo import memos_forget
from tests.accounts.factories import OrganizationFactory, UserFactory, agent_user, role
from tests.routing.factories import DepartmentFactory, HelpTopicFactory, TeamFactory, cti
from tests.tickets.factories import closed_status, open_ticket, priority, status
from tickets.models import EventAction, Ticket

pytestmark = pytest.mark.django_db

QUEUE = reverse("tickets_staff:queue_default")
BULK = reverse("tickets_staff:bulk")


def queue_url(slug):
    return reverse("tickets_staff:queue", args=[slug])


def numbers(response):
    """The ticket numbers listed in the queue's table, in order."""
    return [ticket.number for ticket in response.context["page"].object_list]


def make(department, **changes):
    """A ticket opened through the service, then given what the test is about."""
    ticket = open_ticket(department=department)
    if changes:
        Ticket.objects.filter(pk=ticket.pk).update(**changes)
        ticket.refresh_from_db()
    return ticket


@pytest.fixture
def signed_in(client, agent):
    client.force_login(agent)
    return client


class TestAccess:
    def test_visitors_are_sent_to_the_staff_sign_in(self, client):
        response = client.get(QUEUE)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("staff:login"))

    def test_customers_are_sent_to_the_portal(self, client):
        client.force_login(UserFactory())
        response = client.get(queue_url("mine"))
        assert response.status_code == 302 and response["Location"] == reverse("portal:home")

    def test_an_unknown_queue_is_not_found(self, signed_in):
        assert signed_in.get(queue_url("nonsense")).status_code == 404
        assert signed_in.get(queue_url("department-999999")).status_code == 404
        assert signed_in.get(queue_url("topic-999999")).status_code == 404

    def test_the_queue_takes_no_posts(self, signed_in):
        assert signed_in.post(QUEUE).status_code == 405

    def test_tickets_of_other_departments_never_appear(self, signed_in, department):
        mine = make(department)
        elsewhere = make(DepartmentFactory(name="Billing"))
        listed = numbers(signed_in.get(QUEUE))
        assert mine.number in listed and elsewhere.number not in listed
        searched = signed_in.get(QUEUE, {"q": elsewhere.number})
        assert numbers(searched) == []

    def test_an_agent_sees_another_departments_ticket_assigned_to_them(self, signed_in, agent):
        other = make(DepartmentFactory(name="Billing"), assignee=agent)
        assert numbers(signed_in.get(queue_url("mine"))) == [other.number]


class TestQueues:
    def test_the_open_queue_lists_unresolved_tickets_with_every_column(
        self, signed_in, department, agent
    ):
        customer = UserFactory(name="Casey Jones", email="casey@example.com")
        ticket = open_ticket(
            department=department,
            user=customer,
            subject="Printer jammed",
            priority=priority("High"),
        )
        due = timezone.now() + timedelta(hours=3)
        Ticket.objects.filter(pk=ticket.pk).update(assignee=agent, due_at=due)
        closed = make(department, status=closed_status())
        response = signed_in.get(QUEUE)
        assert response.status_code == 200
        assert numbers(response) == [ticket.number]
        assert closed.number not in numbers(response)
        html = response.content.decode()
        for text in (
            f"#{ticket.number}",
            "Printer jammed",
            "Casey Jones",
            department.name,
            "High",
            "Open",
            agent.get_full_name(),
            reverse("tickets_staff:ticket", args=[ticket.number]),
            due.isoformat()[:16],
        ):
            assert text in html, text

    def test_the_default_order_is_most_urgent_first_then_oldest(self, signed_in, department):
        now = timezone.now()
        old_normal = make(department, created_at=now - timedelta(days=3))
        new_normal = make(department, created_at=now - timedelta(days=1))
        new_urgent = make(department, priority=priority("Emergency"), created_at=now)
        old_low = make(department, priority=priority("Low"), created_at=now - timedelta(days=9))
        assert numbers(signed_in.get(QUEUE)) == [
            new_urgent.number,
            old_normal.number,
            new_normal.number,
            old_low.number,
        ]

    def test_a_department_queue_puts_unresolved_tickets_first(self, signed_in, department):
        now = timezone.now()
        closed_urgent = make(
            department,
            status=closed_status(),
            priority=priority("Emergency"),
            created_at=now - timedelta(days=5),
        )
        open_low = make(department, priority=priority("Low"), created_at=now)
        deleted = make(department, status=status("Deleted"))
        response = signed_in.get(queue_url(f"department-{department.pk}"))
        assert numbers(response) == [open_low.number, closed_urgent.number]
        assert deleted.number not in numbers(response)
        assert response.context["queue"].label == department.name

    def test_my_tickets_puts_unresolved_first_then_the_newest(self, signed_in, department, agent):
        now = timezone.now()
        older = make(department, assignee=agent, created_at=now - timedelta(days=2))
        newer = make(department, assignee=agent, created_at=now - timedelta(days=1))
        closed_newest = make(department, assignee=agent, status=closed_status(), created_at=now)
        make(department)  # not mine
        assert numbers(signed_in.get(queue_url("mine"))) == [
            newer.number,
            older.number,
            closed_newest.number,
        ]

    def test_each_queue_holds_its_own_tickets(self, signed_in, department, agent):
        team = TeamFactory(name="Printers")
        agent.agent.teams.add(team)
        other_agent = agent_user(department=department)
        plain = make(department, assignee=other_agent)
        unassigned = make(department)
        teams = make(department, team=team, assignee=other_agent)
        overdue = make(department, is_overdue=True, assignee=other_agent)
        answered = make(department, is_answered=True, assignee=other_agent)
        closed = make(department, status=closed_status())
        archived = make(department, status=status("Archived"))
        topic = HelpTopicFactory(name="Hardware")
        topical = make(department, help_topic=topic, assignee=other_agent)
        expected = {
            "open": {plain, unassigned, teams, overdue, answered, topical},
            "unassigned": {unassigned},
            "teams": {teams},
            "overdue": {overdue},
            "answered": {answered},
            "closed": {closed, archived},
            f"topic-{topic.pk}": {topical},
        }
        for slug, tickets in expected.items():
            listed = set(numbers(signed_in.get(queue_url(slug))))
            assert listed == {t.number for t in tickets}, slug

    def test_the_queue_menu_lists_my_departments_and_the_help_topics(self, signed_in, department):
        HelpTopicFactory(name="Returns")
        DepartmentFactory(name="Secret Lab")
        html = signed_in.get(QUEUE).content.decode()
        assert queue_url(f"department-{department.pk}") in html
        assert "Secret Lab" not in html.split('aria-label="Queues"')[1].split("</aside>")[0]
        assert "Returns" in html


class TestFilters:
    def test_by_status_priority_department_and_help_topic(self, client, department):
        second = DepartmentFactory(name="Billing")
        agent = agent_user(department=department, extended={second: role("All Access")})
        client.force_login(agent)
        topic = HelpTopicFactory(name="Returns")
        waiting = make(department, status=status("Waiting on Customer"))
        urgent = make(department, priority=priority("Emergency"))
        billing = make(second)
        returns = make(department, help_topic=topic)
        waiting_id = status("Waiting on Customer").pk
        assert numbers(client.get(QUEUE, {"status": waiting_id})) == [waiting.number]
        assert numbers(client.get(QUEUE, {"priority": priority("Emergency").pk})) == [urgent.number]
        assert numbers(client.get(QUEUE, {"department": second.pk})) == [billing.number]
        assert numbers(client.get(QUEUE, {"help_topic": topic.pk})) == [returns.number]

    def test_by_a_state_across_statuses(self, signed_in, department):
        resolved = make(department, status=status("Resolved"))
        closed = make(department, status=closed_status())
        make(department)
        response = signed_in.get(queue_url(f"department-{department.pk}"), {"status": "closed"})
        assert set(numbers(response)) == {resolved.number, closed.number}
        offered = dict(response.context["filter_form"].fields["status"].choices).values()
        assert "Resolved" in offered and "Deleted" not in offered  # no queue lists deleted ones

    def test_by_assignee(self, signed_in, department, agent):
        colleague = agent_user(department=department)
        mine = make(department, assignee=agent)
        theirs = make(department, assignee=colleague)
        nobody = make(department)
        assert numbers(signed_in.get(QUEUE, {"assignee": "me"})) == [mine.number]
        assert numbers(signed_in.get(QUEUE, {"assignee": colleague.pk})) == [theirs.number]
        assert numbers(signed_in.get(QUEUE, {"assignee": "none"})) == [nobody.number]

    def test_by_organization_and_cti_category(self, signed_in, department):
        acme = OrganizationFactory(name="Acme Rockets")
        rockets = make(department, organization=acme)
        item = cti("Hardware", "Printer", "Jam")
        jammed = make(
            department, cti_category=item.type.category, cti_type=item.type, cti_item=item
        )
        make(department)
        assert numbers(signed_in.get(QUEUE, {"organization": "rocket"})) == [rockets.number]
        assert numbers(signed_in.get(QUEUE, {"organization": str(acme.pk)})) == [rockets.number]
        category = item.type.category.pk
        assert numbers(signed_in.get(QUEUE, {"cti_category": category})) == [jammed.number]

    @time_machine.travel("2026-03-10 12:00:00+00:00", tick=False)
    def test_by_due_today(self, signed_in, department):
        today = make(department, due_at=timezone.now() + timedelta(hours=5))
        make(department, due_at=timezone.now() + timedelta(days=1))
        make(department, due_at=None)
        assert numbers(signed_in.get(QUEUE, {"due": "today"})) == [today.number]

    def test_a_bad_filter_value_is_reported_and_ignored(self, signed_in, department):
        ticket = make(department)
        response = signed_in.get(QUEUE, {"priority": "99999", "assignee": "<b>x</b>"})
        assert response.status_code == 200
        assert numbers(response) == [ticket.number]
        assert "priority" in response.context["filter_form"].errors
        assert "Select a valid choice" in response.content.decode()
        assert "<b>x</b>" not in response.content.decode()

    def test_filters_combine_and_the_page_says_when_nothing_matches(self, signed_in, department):
        make(department, priority=priority("Low"))
        response = signed_in.get(QUEUE, {"priority": priority("Emergency").pk})
        assert numbers(response) == []
        assert "No tickets match these filters." in response.content.decode()


class TestSortingAndSearch:
    def test_every_column_sorts_both_ways(self, signed_in, department, agent):
        now = timezone.now()
        a = make(department, subject="Alpha", priority=priority("Low"), due_at=now, assignee=agent)
        b = make(department, subject="Bravo", priority=priority("High"), due_at=None)
        for column in (
            "number",
            "subject",
            "customer",
            "department",
            "priority",
            "status",
            "assignee",
            "updated",
            "due",
            "created",
        ):
            for sort in (column, f"-{column}"):
                response = signed_in.get(QUEUE, {"sort": sort})
                assert response.status_code == 200, sort
                assert set(numbers(response)) == {a.number, b.number}
        assert numbers(signed_in.get(QUEUE, {"sort": "subject"})) == [a.number, b.number]
        assert numbers(signed_in.get(QUEUE, {"sort": "-subject"})) == [b.number, a.number]
        assert numbers(signed_in.get(QUEUE, {"sort": "priority"})) == [b.number, a.number]
        # Tickets without a due date or an assignee go last either way.
        assert numbers(signed_in.get(QUEUE, {"sort": "due"})) == [a.number, b.number]
        assert numbers(signed_in.get(QUEUE, {"sort": "-due"})) == [a.number, b.number]
        assert numbers(signed_in.get(QUEUE, {"sort": "-assignee"})) == [a.number, b.number]

    def test_the_sorted_column_is_marked_and_its_link_reverses_it(self, signed_in, department):
        make(department)
        html = signed_in.get(QUEUE, {"sort": "subject"}).content.decode()
        assert 'aria-sort="ascending"' in html
        assert "?sort=-subject" in html

    def test_an_unknown_sort_falls_back_to_the_default_order(self, signed_in, department):
        make(department)
        response = signed_in.get(QUEUE, {"sort": "user__password"})
        assert response.status_code == 200
        assert len(numbers(response)) == 1

    def test_the_search_box_finds_subject_number_and_customer(self, signed_in, department):
        customer = UserFactory(name="Zelda Fitzgerald", email="zelda@example.com")
        wanted = open_ticket(department=department, user=customer, subject="VPN drops hourly")
        make(department)
        for query in ("VPN", wanted.number, f"#{wanted.number}", "zelda@example.com", "Zelda"):
            assert numbers(signed_in.get(QUEUE, {"q": query})) == [wanted.number], query
        page = signed_in.get(QUEUE, {"q": "VPN"}).content.decode()
        assert 'value="VPN"' in page  # the header's search box keeps the query

    def test_the_search_finds_message_text(self, signed_in, department):
        wanted = open_ticket(department=department, body="The flux capacitor smokes")
        make(department)
        assert numbers(signed_in.get(QUEUE, {"q": "capacitor"})) == [wanted.number]


class TestPagingAndHtmx:
    def test_pages_of_25_and_a_choice_of_page_size(self, signed_in, department):
        for _ in range(30):
            make(department)
        first = signed_in.get(QUEUE)
        assert len(numbers(first)) == 25
        assert "30 tickets" in first.content.decode()
        second = signed_in.get(QUEUE, {"page": 2})
        assert len(numbers(second)) == 5
        assert not set(numbers(first)) & set(numbers(second))
        assert len(numbers(signed_in.get(QUEUE, {"per_page": 50}))) == 30
        # A page past the end shows the last one rather than an error.
        assert numbers(signed_in.get(QUEUE, {"page": 99})) == numbers(second)

    def test_paging_links_keep_the_filters(self, signed_in, department):
        for _ in range(27):
            make(department, priority=priority("High"))
        html = signed_in.get(QUEUE, {"priority": priority("High").pk, "sort": "-number"})
        assert (
            f"?priority={priority('High').pk}&amp;sort=-number&amp;page=2" in html.content.decode()
        )

    def test_htmx_gets_the_table_alone(self, signed_in, department):
        ticket = make(department)
        response = signed_in.get(
            QUEUE, {"sort": "-number"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="queue-table"
        )
        html = response.content.decode()
        assert response.status_code == 200
        assert html.lstrip().startswith('<div id="queue-table"')
        assert "<html" not in html and f"#{ticket.number}" in html
        assert "HX-Request" in response["Vary"]
        # The filter form outside the table learns the new sort, so filtering keeps it.
        assert 'name="sort" value="-number" id="filter-sort" hx-swap-oob="true"' in html
        full = signed_in.get(QUEUE)
        assert "<html" in full.content.decode() and "HX-Request" in full["Vary"]

    def test_an_htmx_history_restore_gets_the_whole_page(self, signed_in, department):
        make(department)
        response = signed_in.get(
            QUEUE,
            HTTP_HX_REQUEST="true",
            HTTP_HX_TARGET="queue-table",
            HTTP_HX_HISTORY_RESTORE_REQUEST="true",
        )
        assert "<html" in response.content.decode()

    def test_the_links_and_forms_work_without_javascript(self, signed_in, department):
        make(department)
        html = signed_in.get(QUEUE).content.decode()
        assert 'hx-get="?sort=number' in html and 'href="?sort=number' in html
        assert f'method="post" action="{BULK}"' in html
        assert 'method="get" action="/scp/tickets/"' in html

    @pytest.mark.parametrize("params", [{}, {"q": "printer", "sort": "-due", "status": "open"}])
    def test_the_page_costs_the_same_queries_for_3_or_30_tickets(
        self, client, department, django_assert_num_queries, params
    ):
        # The costliest agent to look up: extended access and a team.
        team = TeamFactory()
        second = DepartmentFactory(name="Billing")
        agent = agent_user(
            department=department, extended={second: role("All Access")}, teams=[team]
        )
        client.force_login(agent)
        for _ in range(3):
            make(department, assignee=agent, team=team)
        # Nothing kept (memos_forget; the query cache keeps nothing inside this test's
        # transaction): session, user, the settings row, agent scope (agent with role,
        # extended access with roles, teams), the choices (one UNION), the agents, the count,
        # the page's ids, the page's rows, and its departments, statuses, priorities and teams
        # (tickets.related).
        # Once committed, as in production, it is 3: test_list_caches.py.
        memos_forget()
        with django_assert_num_queries(15):
            client.get(QUEUE, params)
        for n in range(27):
            place = second if n % 2 else department
            make(place, assignee=agent_user(department=place), team=TeamFactory())
        memos_forget()
        with django_assert_num_queries(15):
            response = client.get(QUEUE, {**params, "per_page": 50})
        assert len(numbers(response)) == 30


class TestEscaping:
    def test_subjects_names_and_searches_are_escaped(self, signed_in, department):
        customer = UserFactory(name='<img src=x onerror="alert(1)">')
        open_ticket(
            department=department, user=customer, subject="<script>alert('subject')</script>"
        )
        team = TeamFactory(name="<svg onload=alert(2)>")
        Ticket.objects.update(team=team)
        # Names in the menus and the filter and bulk selects.
        agent_user(department=department, user__name="<script>alert('agent')</script>")
        HelpTopicFactory(name="<b onmouseover=alert(5)>Topic</b>")
        DepartmentFactory(name="<i onclick=alert(6)>Dept</i>")
        # Django's templates escape ' as &#x27;, the Jinja2 rows as &#39;: the same.
        html = signed_in.get(QUEUE).content.decode().replace("&#39;", "&#x27;")
        assert html.count("&lt;script&gt;alert(&#x27;agent&#x27;)&lt;/script&gt;") == 2
        assert "&lt;b onmouseover=alert(5)&gt;Topic&lt;/b&gt;" in html
        assert "&lt;i onclick=alert(6)&gt;Dept&lt;/i&gt;" in html
        assert "onmouseover=alert(5)>" not in html and "onclick=alert(6)>" not in html
        assert "&lt;script&gt;alert(&#x27;subject&#x27;)&lt;/script&gt;" in html
        assert "<script>alert" not in html
        assert "<img src=x" not in html and "<svg onload" not in html
        searched = signed_in.get(QUEUE, {"q": '"><script>alert(3)</script>'}).content.decode()
        assert "<script>alert(3)" not in searched
        assert "&lt;script&gt;alert(3)" in searched


class TestBulk:
    def post(self, client, tickets, **data):
        return client.post(BULK, {"tickets": [t.number for t in tickets], **data}, follow=True)

    def messages(self, response):
        return [str(message) for message in response.context["messages"]]

    def test_assigns_the_selected_tickets(self, signed_in, department, agent):
        colleague = agent_user(department=department)
        team = TeamFactory(name="Night shift")
        first, second = make(department), make(department)
        response = self.post(
            signed_in, [first, second], action="assign", agent=colleague.pk, team=team.pk
        )
        assert self.messages(response) == ["2 tickets changed."]
        for ticket in (first, second):
            ticket.refresh_from_db()
            assert (ticket.assignee, ticket.team) == (colleague, team)
            assert ticket.thread.events.filter(action=EventAction.ASSIGNED).exists()

    def test_changes_the_status_and_comes_back_to_the_same_queue(self, signed_in, department):
        ticket = make(department)
        back = f"{queue_url('unassigned')}?sort=-number"
        response = self.post(
            signed_in, [ticket], action="status", status=closed_status().pk, next=back
        )
        assert response.redirect_chain[-1][0] == back
        ticket.refresh_from_db()
        assert ticket.status == closed_status() and ticket.closed_at is not None
        assert self.messages(response) == ["1 ticket changed."]

    def test_reports_each_refusal_and_keeps_the_other_changes(self, client, department):
        view_only = DepartmentFactory(name="Legal")
        target = DepartmentFactory(name="Billing")
        agent = agent_user(department=department, extended={view_only: role("View Only")})
        client.force_login(agent)
        allowed = make(department)
        refused = make(view_only)
        invisible = make(DepartmentFactory(name="Secret Lab"))
        response = self.post(
            client, [allowed, refused, invisible], action="transfer", department=target.pk
        )
        [message] = self.messages(response)
        assert message.startswith("1 ticket changed, 2 refused: ")
        assert f"#{refused.number} You may not do this (ticket.transfer)." in message
        assert f"#{invisible.number} no such ticket" in message
        allowed.refresh_from_db(), refused.refresh_from_db(), invisible.refresh_from_db()
        assert allowed.department == target
        assert refused.department == view_only
        assert invisible.department.name == "Secret Lab"

    def test_a_service_refusal_names_the_reason(self, signed_in, department):
        ticket = make(department)
        response = self.post(signed_in, [ticket], action="transfer", department=department.pk)
        [message] = self.messages(response)
        assert message == (
            f"0 tickets changed, 1 refused: #{ticket.number} "
            "The ticket is already in this department."
        )

    def test_nothing_selected_or_no_target_is_an_error(self, signed_in, department):
        ticket = make(department)
        response = self.post(signed_in, [], action="assign")
        assert "Select at least one ticket." in self.messages(response)
        response = self.post(signed_in, [ticket], action="assign")
        assert "Choose an agent or a team to assign the tickets to." in self.messages(response)
        response = self.post(signed_in, [ticket], action="explode")
        assert any("valid choice" in m for m in self.messages(response))
        ticket.refresh_from_db()
        assert ticket.assignee is None

    def test_does_not_redirect_to_another_site(self, signed_in, department):
        ticket = make(department)
        response = signed_in.post(
            BULK,
            {
                "tickets": [ticket.number],
                "action": "status",
                "status": closed_status().pk,
                "next": "https://evil.example/",
            },
        )
        assert response["Location"] == QUEUE

    def test_customers_and_get_requests_are_refused(self, client, department):
        ticket = make(department)
        customer = User.objects.get(pk=ticket.user_id)
        client.force_login(customer)
        response = client.post(
            BULK, {"tickets": [ticket.number], "action": "status", "status": closed_status().pk}
        )
        assert response.status_code == 302 and response["Location"] == reverse("portal:home")
        ticket.refresh_from_db()
        assert ticket.status.is_open
        client.force_login(agent_user(department=department))
        assert client.get(BULK).status_code == 405

    def test_the_table_offers_the_checkboxes_and_the_actions(self, signed_in, department):
        ticket = make(department)
        html = signed_in.get(QUEUE).content.decode()
        assert f'name="tickets" value="{ticket.number}"' in html
        assert 'data-check-all="tickets"' in html
        for action in ("assign", "status", "transfer"):
            assert f'name="action" value="{action}"' in html
