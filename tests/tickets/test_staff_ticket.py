"""The staff ticket page and its actions, as an agent uses them (with and without htmx)."""

import io
import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from helpdesk.lib.memo import memos_forget
from tests.accounts.factories import OrganizationFactory, UserFactory, agent_user, role
from tests.routing.factories import DepartmentFactory, HelpTopicFactory, TeamFactory, cti
from tests.sla.factories import SLAPlanFactory
from tests.tickets.factories import open_ticket, priority, status
from tickets import services
from tickets.models import Collaborator, EntryKind, EventAction, ThreadEntry, Ticket
from tickets.services import AttachmentUpload

pytestmark = pytest.mark.django_db

XSS = '<script>alert(1)</script><img src=x onerror="alert(2)">'
HTMX = {"HTTP_HX_REQUEST": "true"}


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts = 0
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.scripts += tag == "script" and not dict(attrs).get("src")
        self.handlers += [name for name, _value in attrs if name.startswith("on")]


def live_markup(html: str) -> tuple[int, list[str]]:
    """Inline <script> elements and on*= attributes in `html`, as a browser parses them:
    what an XSS payload that survived escaping would look like."""
    parser = _Markup()
    parser.feed(html)
    return parser.scripts, parser.handlers


def select_options(html: str, name: str) -> list[str]:
    """The option values of the <select name=...> in `html`."""
    block = html.split(f'name="{name}"', 1)[1].split("</select>", 1)[0]
    return re.findall(r'<option value="([^"]*)"', block)


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def customer():
    return UserFactory(email="casey@example.com", name="Casey")


@pytest.fixture
def ticket(department, customer):
    return open_ticket(user=customer, department=department, subject="Printer on fire")


@pytest.fixture
def signed_in(client, agent):
    client.force_login(agent)
    return client


def page_url(ticket: Ticket) -> str:
    return reverse("tickets_staff:ticket", args=[ticket.number])


def action_url(name: str, ticket: Ticket) -> str:
    return reverse(f"tickets_staff:{name}", args=[ticket.number])


def fresh(ticket: Ticket) -> Ticket:
    return Ticket.objects.get(pk=ticket.pk)


def events(ticket: Ticket) -> list[str]:
    return list(ticket.thread.events.order_by("pk").values_list("action", flat=True))


class TestPage:
    def test_shows_the_header_customer_card_and_thread(self, signed_in, ticket, agent, customer):
        customer.organization = OrganizationFactory(name="Acme Ltd")
        customer.save()
        older = open_ticket(user=customer, department=ticket.department, subject="Old jam")
        services.ticket_reply(ticket=ticket, by=agent, body="We are **on it**.")
        services.ticket_note_add(ticket=ticket, by=agent, body="Call facilities.")
        response = signed_in.get(page_url(ticket))
        assert response.status_code == 200
        html = response.content.decode()
        assert f"#{ticket.number}" in html and "Printer on fire" in html
        assert "Normal" in html and "Helpdesk" in html and "Open" in html
        assert "casey@example.com" in html and "Casey" in html
        assert f"#{older.number}" in html and "Old jam" in html
        # Each kind of entry looks different and says what it is in words.
        assert 'class="entry entry-message"' in html
        assert 'class="entry entry-response"' in html
        assert 'class="entry entry-note"' in html
        assert "Internal note" in html and "<strong>on it</strong>" in html
        assert html.index("It is on fire") < html.index("on it") < html.index("Call facilities")

    def test_shows_the_customers_phone_and_notes_and_where_the_ticket_came_from(
        self, signed_in, ticket, customer
    ):
        customer.phone, customer.notes = "+49 30 1234X5", "Prefers <b>email</b>"
        customer.save(update_fields=["phone", "notes"])
        Ticket.objects.filter(pk=ticket.pk).update(ip_address="203.0.113.9")
        html = signed_in.get(page_url(ticket)).content.decode()
        assert "+49 30 1234X5" in html and "from 203.0.113.9" in html
        assert "Prefers &lt;b&gt;email&lt;/b&gt;" in html

    def test_the_customer_card_lists_other_tickets_the_agent_may_see_only(
        self, signed_in, ticket, customer
    ):
        elsewhere = open_ticket(user=customer, department=DepartmentFactory(), subject="Hidden")
        html = signed_in.get(page_url(ticket)).content.decode()
        assert elsewhere.number not in html and "Hidden" not in html

    def test_runs_the_same_few_queries_for_2_and_50_entries_with_attachments(
        self, client, department, ticket, customer, django_assert_max_num_queries
    ):
        # An agent with an extended department too: their scope costs a query more.
        agent = agent_user(
            department=department, extended={DepartmentFactory(): role("All Access")}
        )
        client.force_login(agent)
        TeamFactory()
        HelpTopicFactory()
        collaborator = UserFactory()
        Collaborator.objects.create(ticket=ticket, user=collaborator)

        def add_entries(count: int) -> None:
            for index in range(count):
                upload = AttachmentUpload(f"shot{index}.png", png_bytes(), "image/png")
                if index % 2:
                    services.ticket_note_add(
                        ticket=ticket, by=agent, body=f"note {index}", attachments=[upload]
                    )
                else:
                    services.ticket_message_add(
                        ticket=ticket, user=customer, body=f"msg {index}", attachments=[upload]
                    )

        # With nothing kept (memos_forget): the settings row, the agent's scope and the
        # ticket's status, priority, department, team, help topic and SLA plan
        # (tickets.related) are read too, and the texts of the entries not rendered before
        # (one query).
        # Once kept, as in production, the page runs 5 queries: test_list_caches.py.
        add_entries(1)
        memos_forget()
        with django_assert_max_num_queries(19) as few:
            assert client.get(page_url(ticket)).status_code == 200
        add_entries(49)
        memos_forget()
        with django_assert_max_num_queries(19) as many:
            response = client.get(page_url(ticket))
        assert response.content.decode().count('class="thumb"') == 50
        assert len(many.captured_queries) == len(few.captured_queries)

    def test_the_thread_is_rendered_again_when_an_entry_or_its_author_changes(
        self, signed_in, ticket, agent
    ):
        services.ticket_reply(ticket=ticket, by=agent, body="First answer")
        assert "First answer" in signed_in.get(page_url(ticket)).content.decode()
        agent.name = "Renamed Agent"
        agent.save(update_fields=["name"])
        entry = ticket.thread.entries.get(body="First answer")
        entry.body, entry.body_html = "Edited answer", "<p>Edited answer</p>"
        entry.save()
        html = signed_in.get(page_url(ticket)).content.decode()
        assert "Edited answer" in html and "First answer" not in html
        assert "Renamed Agent" in html

    def test_anonymous_visitors_are_sent_to_the_staff_sign_in(self, client, ticket):
        response = client.get(page_url(ticket))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("staff:login"))

    def test_customers_are_sent_to_the_portal_even_for_their_own_ticket(
        self, client, ticket, customer
    ):
        client.force_login(customer)
        response = client.get(page_url(ticket))
        assert response.status_code == 302
        assert response["Location"] == reverse("portal:home")

    def test_agents_of_another_department_get_404(self, client, ticket):
        client.force_login(agent_user(department=DepartmentFactory()))
        assert client.get(page_url(ticket)).status_code == 404
        assert client.get(reverse("tickets_staff:ticket", args=["000000"])).status_code == 404

    def test_user_content_is_escaped_everywhere(self, signed_in, department, agent):
        customer = UserFactory(
            email="evil@example.com",
            name=f"Eve {XSS}",
            organization=OrganizationFactory(name=f"Org {XSS}"),
        )
        ticket = open_ticket(user=customer, department=department, subject=f"Hi {XSS}", body=XSS)
        Collaborator.objects.create(ticket=ticket, user=UserFactory(name=f"Col {XSS}"))
        services.ticket_message_add(
            ticket=ticket, user=customer, body=f"<p>mail</p>{XSS}", body_format="html"
        )
        services.ticket_note_add(
            ticket=ticket,
            by=agent,
            body="see file",
            attachments=[AttachmentUpload(f"{XSS}.txt", b"hello", "text/plain")],
        )
        html = signed_in.get(page_url(ticket)).content.decode()
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert live_markup(html) == (0, [])
        assert "script&gt;&lt;img src=x onerror" in html  # the file name, as text

    def test_sends_a_content_security_policy_without_inline_scripts(self, signed_in, ticket):
        policy = signed_in.get(page_url(ticket))["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy

    def test_shows_only_the_actions_the_agent_may_do(self, client, department, ticket):
        viewer = agent_user(department=department, role=role("View Only"))
        client.force_login(viewer)
        html = client.get(page_url(ticket)).content.decode()
        for name in ("reply", "assign", "transfer", "status", "priority", "subject", "claim"):
            assert action_url(name, ticket) not in html, name
        assert action_url("note", ticket) in html  # every agent who sees it may add notes

    def test_an_all_access_agent_gets_every_action(self, signed_in, ticket):
        html = signed_in.get(page_url(ticket)).content.decode()
        for name in ("reply", "note", "assign", "transfer", "status", "priority", "topic", "cti"):
            assert action_url(name, ticket) in html, name
        assert action_url("subject", ticket) in html
        assert action_url("collaborators", ticket) in html


class TestHtmxOutcomes:
    def test_a_refusal_answers_403_with_the_fragment_and_the_reason(
        self, client, department, ticket
    ):
        client.force_login(agent_user(department=department, role=role("View Only")))
        response = client.post(
            action_url("priority", ticket), {"priority-priority": priority("High").pk}, **HTMX
        )
        assert response.status_code == 403
        html = response.content.decode()
        assert 'id="ticket"' in html and "<html" not in html
        assert "You may not do this" in html

    def test_losing_access_sends_the_browser_to_the_queues(self, signed_in, ticket):
        other = DepartmentFactory(name="Billing")
        response = signed_in.post(
            action_url("transfer", ticket), {"transfer-department": other.pk}, **HTMX
        )
        assert response.status_code == 204
        assert response["HX-Redirect"] == reverse("tickets_staff:queue_default")


class TestReply:
    def test_sends_a_reply_and_comes_back_with_a_message(self, signed_in, ticket):
        response = signed_in.post(
            action_url("reply", ticket), {"reply-body": "Try **turning it off**."}, follow=True
        )
        assert response.redirect_chain[-1][0] == page_url(ticket)
        html = response.content.decode()
        assert "Reply sent." in html
        entry = ticket.thread.entries.get(kind=EntryKind.RESPONSE)
        assert entry.body == "Try **turning it off**."
        assert "<strong>turning it off</strong>" in html

    def test_appends_the_chosen_signature(self, signed_in, ticket, agent):
        agent.agent.signature = "Sam from Support"
        agent.agent.save()
        ticket.department.signature = "The Helpdesk team"
        ticket.department.save()
        html = signed_in.get(page_url(ticket)).content.decode()
        assert "My signature" in html and "Department signature" in html
        signed_in.post(
            action_url("reply", ticket), {"reply-body": "Done.", "reply-signature": "mine"}
        )
        signed_in.post(
            action_url("reply", ticket), {"reply-body": "Again.", "reply-signature": "none"}
        )
        bodies = list(
            ticket.thread.entries.filter(kind=EntryKind.RESPONSE)
            .order_by("pk")
            .values_list("body", flat=True)
        )
        assert bodies == ["Done.\n\n-- \nSam from Support", "Again."]

    def test_can_change_the_status_on_send(self, signed_in, ticket):
        waiting = status("Waiting on Customer")
        response = signed_in.post(
            action_url("reply", ticket), {"reply-body": "Which model?", "reply-status": waiting.pk}
        )
        assert response.status_code == 302
        assert fresh(ticket).status == waiting

    def test_takes_several_attachments(self, signed_in, ticket):
        files = [
            _upload("a.png", png_bytes(), "image/png"),
            _upload("notes.txt", b"some notes", "text/plain"),
        ]
        response = signed_in.post(
            action_url("reply", ticket), {"reply-body": "Files.", "reply-attachments": files}
        )
        assert response.status_code == 302
        entry = ticket.thread.entries.get(kind=EntryKind.RESPONSE)
        assert sorted(entry.attachments.values_list("name", flat=True)) == ["a.png", "notes.txt"]

    def test_a_fake_image_is_refused_next_to_the_field_and_the_text_kept(self, signed_in, ticket):
        fake = _upload("cat.png", b"<svg onload=alert(1)>", "image/png")
        response = signed_in.post(
            action_url("reply", ticket), {"reply-body": "Look", "reply-attachments": [fake]}
        )
        assert response.status_code == 400
        html = response.content.decode()
        assert "cat.png is not a valid image." in html
        assert "Look</textarea>" in html
        assert not ticket.thread.entries.filter(kind=EntryKind.RESPONSE).exists()

    def test_an_empty_reply_shows_the_error_at_the_field(self, signed_in, ticket):
        response = signed_in.post(action_url("reply", ticket), {"reply-body": "  "})
        assert response.status_code == 400
        assert "Write a reply or attach a file." in response.content.decode()

    def test_with_htmx_swaps_the_page_fragment(self, signed_in, ticket):
        response = signed_in.post(action_url("reply", ticket), {"reply-body": "Hello"}, **HTMX)
        assert response.status_code == 200
        html = response.content.decode()
        assert html.lstrip().startswith("{% load") is False
        assert 'id="ticket"' in html and "<html" not in html
        assert "Reply sent." in html and "Hello" in html

    def test_with_htmx_errors_answer_422_with_the_fragment(self, signed_in, ticket):
        response = signed_in.post(action_url("reply", ticket), {"reply-body": ""}, **HTMX)
        assert response.status_code == 422
        assert "Write a reply or attach a file." in response.content.decode()

    def test_an_agent_without_reply_rights_is_refused(self, client, department, ticket):
        client.force_login(agent_user(department=department, role=role("View Only")))
        response = client.post(action_url("reply", ticket), {"reply-body": "Hi"})
        assert response.status_code == 403
        assert "You may not do this" in response.content.decode()
        assert not ticket.thread.entries.filter(kind=EntryKind.RESPONSE).exists()

    def test_actions_are_post_only(self, signed_in, ticket):
        assert signed_in.get(action_url("reply", ticket)).status_code == 405
        assert signed_in.get(action_url("assign", ticket)).status_code == 405

    def test_a_closed_ticket_can_be_reopened_but_an_archived_one_takes_no_reply(
        self, signed_in, ticket, agent
    ):
        services.ticket_status_set(ticket=ticket, by=agent, status=status("Archived"))
        html = signed_in.get(page_url(ticket)).content.decode()
        assert action_url("reply", ticket) not in html
        assert "it takes no replies" in html
        # A reply from a page loaded before the ticket was archived is refused, and says why.
        response = signed_in.post(action_url("reply", ticket), {"reply-body": "Late"})
        assert response.status_code == 400
        assert "it takes no more messages" in response.content.decode()


class TestPreview:
    def test_htmx_preview_renders_markdown_through_the_sanitiser(self, signed_in, ticket):
        response = signed_in.post(
            action_url("preview", ticket), {"reply-body": f"**bold** {XSS}"}, **HTMX
        )
        html = response.content.decode()
        assert "<strong>bold</strong>" in html
        assert live_markup(html) == (0, [])
        assert "<html" not in html

    def test_without_javascript_the_page_comes_back_with_the_preview_and_the_text(
        self, signed_in, ticket
    ):
        response = signed_in.post(action_url("preview", ticket), {"reply-body": "_soon_"})
        html = response.content.decode()
        assert response.status_code == 200
        assert "<em>soon</em>" in html and "_soon_</textarea>" in html
        assert not ticket.thread.entries.filter(kind=EntryKind.RESPONSE).exists()


class TestNote:
    def test_adds_an_internal_note_with_an_attachment(self, signed_in, ticket):
        response = signed_in.post(
            action_url("note", ticket),
            {
                "note-body": "Checked the logs.",
                "note-attachments": [_upload("log.txt", b"x", "text/plain")],
            },
            follow=True,
        )
        assert "Internal note added." in response.content.decode()
        entry = ticket.thread.entries.get(kind=EntryKind.NOTE)
        assert entry.body == "Checked the logs." and entry.attachments.count() == 1


class TestAssignment:
    def test_assigns_to_an_agent_of_the_department(self, signed_in, ticket, department):
        colleague = agent_user(department=department)
        html = signed_in.get(page_url(ticket)).content.decode()
        assert str(colleague.pk) in select_options(html, "assign-agent")
        response = signed_in.post(action_url("assign", ticket), {"assign-agent": colleague.pk})
        assert response.status_code == 302
        assert fresh(ticket).assignee == colleague

    def test_agents_who_cannot_take_the_department_are_not_offered_nor_accepted(
        self, signed_in, ticket
    ):
        outsider = agent_user(department=DepartmentFactory())
        html = signed_in.get(page_url(ticket)).content.decode()
        assert str(outsider.pk) not in select_options(html, "assign-agent")
        response = signed_in.post(action_url("assign", ticket), {"assign-agent": outsider.pk})
        assert response.status_code == 400
        assert "cannot work on tickets of Helpdesk" in response.content.decode()
        assert fresh(ticket).assignee is None

    def test_assigns_to_a_team(self, signed_in, ticket):
        team = TeamFactory(name="Printers")
        signed_in.post(action_url("assign", ticket), {"assign-team": team.pk})
        assert fresh(ticket).team == team

    def test_choosing_nobody_is_an_error(self, signed_in, ticket):
        response = signed_in.post(action_url("assign", ticket), {})
        assert response.status_code == 400
        assert "Choose an agent or a team." in response.content.decode()

    def test_claim_and_release(self, signed_in, ticket, agent):
        response = signed_in.post(action_url("claim", ticket), follow=True)
        assert "The ticket is yours." in response.content.decode()
        assert fresh(ticket).assignee == agent
        response = signed_in.post(action_url("release", ticket), {"what": "agent"}, follow=True)
        assert "The ticket is unassigned." in response.content.decode()
        assert fresh(ticket).assignee is None
        assert events(ticket)[-2:] == [EventAction.CLAIMED, EventAction.RELEASED]

    def test_claiming_an_assigned_ticket_says_who_has_it(self, signed_in, ticket, department):
        colleague = agent_user(department=department)
        services.ticket_assign(ticket=ticket, by=colleague, agent=colleague)
        response = signed_in.post(action_url("claim", ticket))
        assert response.status_code == 400
        assert f"Already assigned to {colleague.get_full_name()}" in response.content.decode()


class TestFields:
    def test_transfer_to_a_department_the_agent_cannot_see_leaves_the_page(self, signed_in, ticket):
        other = DepartmentFactory(name="Billing")
        response = signed_in.post(action_url("transfer", ticket), {"transfer-department": other.pk})
        assert response.status_code == 302
        assert fresh(ticket).department == other
        assert response["Location"] != page_url(ticket)

    def test_transfer_within_reach_returns_to_the_ticket(self, client, department, ticket):
        billing = DepartmentFactory(name="Billing")
        user = agent_user(department=department, extended={billing: role("All Access")})
        client.force_login(user)
        response = client.post(
            action_url("transfer", ticket), {"transfer-department": billing.pk}, follow=True
        )
        assert "Transferred to Billing." in response.content.decode()
        assert response.redirect_chain[-1][0] == page_url(ticket)

    def test_transfer_to_the_same_department_is_an_error(self, signed_in, ticket, department):
        response = signed_in.post(
            action_url("transfer", ticket), {"transfer-department": department.pk}
        )
        assert response.status_code == 400
        assert "already in this department" in response.content.decode()

    def test_changes_status_priority_topic_classification_and_subject(self, signed_in, ticket):
        topic = HelpTopicFactory(name="Hardware")
        item = cti("Hardware", "Printer", "Fire")
        signed_in.post(action_url("status", ticket), {"status-status": status("In Progress").pk})
        signed_in.post(action_url("priority", ticket), {"priority-priority": priority("High").pk})
        signed_in.post(action_url("topic", ticket), {"topic-help_topic": topic.pk})
        signed_in.post(action_url("cti", ticket), {"cti-cti_item": item.pk})
        response = signed_in.post(
            action_url("subject", ticket), {"subject-subject": "Printer smoking"}, follow=True
        )
        assert "Subject saved." in response.content.decode()
        ticket = fresh(ticket)
        assert ticket.status == status("In Progress")
        assert ticket.priority == priority("High")
        assert ticket.help_topic == topic and ticket.cti_item == item
        assert ticket.subject == "Printer smoking"
        assert events(ticket)[-5:] == [
            EventAction.STATUS,
            EventAction.PRIORITY,
            EventAction.EDITED,
            EventAction.CTI,
            EventAction.EDITED,
        ]

    def test_closing_needs_the_close_right(self, client, department, ticket):
        limited = agent_user(department=department, role=role("Limited Access"))
        client.force_login(limited)
        html = client.get(page_url(ticket)).content.decode()
        closed = status("Closed")
        assert str(closed.pk) not in select_options(html, "status-status")
        assert str(status("In Progress").pk) in select_options(html, "status-status")
        response = client.post(action_url("status", ticket), {"status-status": closed.pk})
        assert response.status_code == 403
        assert fresh(ticket).status == status("Open")

    def test_an_empty_subject_is_an_error_at_the_field(self, signed_in, ticket):
        response = signed_in.post(action_url("subject", ticket), {"subject-subject": ""})
        assert response.status_code == 400
        assert "This field is required." in response.content.decode()

    def test_adds_and_removes_a_collaborator(self, signed_in, ticket):
        response = signed_in.post(
            action_url("collaborators", ticket),
            {"collab-email": "Boss@Example.com", "collab-name": "The Boss"},
            follow=True,
        )
        assert "boss@example.com now follows the ticket." in response.content.decode()
        collaborator = Collaborator.objects.get(ticket=ticket)
        assert "The Boss" in response.content.decode()
        response = signed_in.post(
            action_url("collaborators", ticket), {"remove": collaborator.user_id}, follow=True
        )
        assert "is no longer a collaborator" in response.content.decode()
        assert not Collaborator.objects.filter(ticket=ticket).exists()

    def test_the_customer_cannot_be_added_as_collaborator(self, signed_in, ticket):
        response = signed_in.post(
            action_url("collaborators", ticket), {"collab-email": "casey@example.com"}
        )
        assert response.status_code == 400
        assert "The customer already follows the ticket." in response.content.decode()

    def test_actions_on_an_invisible_ticket_are_404(self, client, ticket):
        client.force_login(agent_user(department=DepartmentFactory()))
        response = client.post(action_url("subject", ticket), {"subject-subject": "Mine now"})
        assert response.status_code == 404
        assert fresh(ticket).subject == "Printer on fire"


class TestSla:
    def test_an_agent_puts_the_ticket_under_another_plan_and_its_due_date_follows(
        self, signed_in, ticket
    ):
        plan = SLAPlanFactory(name="Gold", first_response_hours=1, resolution_hours=4)
        html = signed_in.get(page_url(ticket)).content.decode()
        assert str(plan.pk) in select_options(html, "sla-sla")
        response = signed_in.post(action_url("sla", ticket), {"sla-sla": plan.pk}, follow=True)
        assert "SLA plan set to Gold." in response.content.decode()
        ticket = fresh(ticket)
        assert ticket.sla == plan
        assert ticket.first_response_due_at == ticket.created_at + timedelta(hours=1)
        assert "Gold" in signed_in.get(page_url(ticket)).content.decode()

    def test_an_inactive_plan_is_neither_offered_nor_accepted(self, signed_in, ticket):
        plan = SLAPlanFactory(name="Retired", is_active=False)
        html = signed_in.get(page_url(ticket)).content.decode()
        assert str(plan.pk) not in select_options(html, "sla-sla")
        response = signed_in.post(action_url("sla", ticket), {"sla-sla": plan.pk})
        assert response.status_code == 400
        assert fresh(ticket).sla != plan

    def test_the_due_date_is_set_by_hand_and_given_back_to_the_sla(self, signed_in, ticket):
        computed = fresh(ticket).due_at
        wanted = timezone.localtime() + timedelta(days=3)
        response = signed_in.post(
            action_url("due", ticket),
            {"due-due_at": wanted.strftime("%Y-%m-%dT%H:%M"), "due-comment": "Customer away"},
            follow=True,
        )
        assert "Due date set to" in response.content.decode()
        ticket = fresh(ticket)
        assert ticket.due_at == wanted.replace(second=0, microsecond=0)
        assert events(ticket)[-1] == EventAction.DUE_OVERRIDE
        signed_in.post(action_url("due", ticket), {"due-due_at": "", "due-comment": ""})
        assert fresh(ticket).due_at == computed

    def test_a_due_date_in_the_past_is_an_error_at_the_field(self, signed_in, ticket):
        past = timezone.localtime() - timedelta(hours=1)
        response = signed_in.post(
            action_url("due", ticket), {"due-due_at": past.strftime("%Y-%m-%dT%H:%M")}
        )
        assert response.status_code == 400
        assert "The due date must lie in the future." in response.content.decode()

    def test_only_agents_with_the_override_right_see_or_use_it(self, client, department, ticket):
        limited = agent_user(department=department, role=role("View Only"))
        client.force_login(limited)
        assert action_url("due", ticket) not in client.get(page_url(ticket)).content.decode()
        future = (timezone.localtime() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
        response = client.post(action_url("due", ticket), {"due-due_at": future})
        assert response.status_code == 403
        assert fresh(ticket).due_override_at is None


class TestMailBodies:
    def test_remote_images_stay_blocked_until_the_agent_asks(self, signed_in, ticket, customer):
        entry = services.ticket_message_add(
            ticket=ticket,
            user=customer,
            body='<p>See</p><img src="https://tracker.example/pixel.png" alt="pixel">',
            body_format="html",
            source="email",
        )
        response = signed_in.get(page_url(ticket))
        html = response.content.decode()
        assert 'data-remote-src="https://tracker.example/pixel.png"' in html
        assert ' src="https://tracker.example' not in html
        assert "Show remote images" in html
        assert "img-src" in response["Content-Security-Policy"]

        remote = reverse("tickets_staff:entry_remote", args=[ticket.number, entry.pk])
        fragment = signed_in.get(remote, **HTMX).content.decode()
        assert 'src="https://tracker.example/pixel.png"' in fragment
        assert "<html" not in fragment

        response = signed_in.get(remote)
        assert response.status_code == 302
        page = signed_in.get(response["Location"]).content.decode()
        assert 'src="https://tracker.example/pixel.png"' in page

    def test_remote_images_of_another_ticket_are_404(self, signed_in, ticket, department):
        other = open_ticket(department=department)
        entry = other.thread.entries.get()
        remote = reverse("tickets_staff:entry_remote", args=[ticket.number, entry.pk])
        assert signed_in.get(remote, **HTMX).status_code == 404

    def test_quoted_text_of_a_plain_text_reply_is_folded_but_kept(
        self, signed_in, ticket, customer
    ):
        services.ticket_message_add(
            ticket=ticket,
            user=customer,
            body="Still smoking.\n\nOn Mon, 2 Jun 2025, Help Desk wrote:\n> Try turning it off.",
            source="email",
        )
        html = signed_in.get(page_url(ticket)).content.decode()
        assert 'class="entry-quoted"' in html
        written, quoted = html.split('class="entry-quoted"')[0:2]
        assert "Still smoking." in written.split('class="entry entry-message"')[-1]
        assert "Try turning it off." in quoted

    def test_quoted_html_mail_is_folded_below_what_was_written(self, signed_in, ticket, customer):
        services.ticket_message_add(
            ticket=ticket,
            user=customer,
            body=(
                "<div>New words here</div><div><div>On Monday, Help wrote:</div>"
                "<blockquote><p>Old words</p></blockquote></div>"
            ),
            body_format="html",
            source="email",
        )
        html = signed_in.get(page_url(ticket)).content.decode()
        entry_html = html.split('class="entry entry-message"')[-1]
        written, quoted = entry_html.split('class="entry-quoted"')
        assert "New words here" in written and "Old words" not in written
        assert "On Monday, Help wrote:" in quoted and "Old words" in quoted

    def test_an_answer_written_between_quotes_is_never_folded(self, signed_in, ticket, customer):
        services.ticket_message_add(
            ticket=ticket,
            user=customer,
            body="<p>Hi</p><blockquote>Which model?</blockquote><p>The LX-9</p>",
            body_format="html",
            source="email",
        )
        html = signed_in.get(page_url(ticket)).content.decode()
        assert 'class="entry-quoted"' not in html and "The LX-9" in html

    def test_a_message_that_is_all_quote_is_shown_whole(self, signed_in, ticket, customer):
        services.ticket_message_add(
            ticket=ticket, user=customer, body="> typed in the portal", source="web"
        )
        services.ticket_message_add(
            ticket=ticket,
            user=customer,
            body="<blockquote>Only a quote</blockquote>",
            body_format="html",
            source="email",
        )
        html = signed_in.get(page_url(ticket)).content.decode()
        assert (
            "Only a quote" in html.split('class="entry entry-message"')[-1].split("</article>")[0]
        )
        assert "typed in the portal" in html
        assert html.count('class="entry-quoted"') == 0


class TestHistory:
    def test_the_audit_trail_loads_with_htmx_or_inline_without(self, signed_in, ticket, agent):
        services.ticket_priority_set(ticket=ticket, by=agent, priority=priority("High"))
        html = signed_in.get(page_url(ticket)).content.decode()
        assert "Priority changed" not in html
        assert action_url("history", ticket) in html
        fragment = signed_in.get(action_url("history", ticket), **HTMX).content.decode()
        assert "Priority changed" in fragment and "High" in fragment
        page = signed_in.get(page_url(ticket) + "?history=1").content.decode()
        assert "Priority changed" in page

    def test_event_details_are_escaped(self, signed_in, ticket, agent):
        services.ticket_subject_edit(ticket=ticket, by=agent, subject=f"New {XSS}")
        fragment = signed_in.get(action_url("history", ticket), **HTMX).content.decode()
        assert "<script>alert(1)</script>" not in fragment
        assert "&lt;script&gt;" in fragment


def _upload(name: str, content: bytes, content_type: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content, content_type=content_type)


def test_entries_of_internal_notes_are_marked_for_agents_only(signed_in, ticket, agent):
    services.ticket_note_add(ticket=ticket, by=agent, body="secret")
    entry = ThreadEntry.objects.get(kind=EntryKind.NOTE)
    html = signed_in.get(page_url(ticket)).content.decode()
    article = html.split(f'id="entry-{entry.pk}"')[1].split("</article>")[0]
    assert "entry-note" in html and "Internal note" in article
