"""Changing tickets: replies, notes, assignment, transfer, status and the rest."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from tests.accounts.factories import UserFactory, agent_user, role
from tests.routing.factories import DepartmentFactory, HelpTopicFactory
from tests.routing.factories import TeamFactory as Team
from tests.tickets.factories import closed_status, open_ticket, priority, status
from tickets import selectors, services, signals
from tickets.models import Collaborator, EntryKind, EventAction, Referral, StatusState

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer():
    return UserFactory(email="casey@example.com", name="Casey")


@pytest.fixture
def ticket(department, customer):
    return open_ticket(user=customer, department=department)


def actions(ticket):
    return list(ticket.thread.events.order_by("pk").values_list("action", flat=True))


class TestCustomerMessages:
    def test_a_message_marks_the_ticket_unanswered(self, ticket, customer, agent):
        services.ticket_reply(ticket=ticket, by=agent, body="On it.")
        assert ticket.is_answered
        entry = services.ticket_message_add(ticket=ticket, user=customer, body="Still broken")
        assert entry.kind == EntryKind.MESSAGE
        ticket.refresh_from_db()
        assert not ticket.is_answered
        assert ticket.last_message_at == entry.created_at

    def test_a_message_reopens_a_closed_ticket(self, ticket, customer, agent):
        services.ticket_status_set(ticket=ticket, by=agent, status=closed_status())
        services.ticket_message_add(ticket=ticket, user=customer, body="Not fixed after all")
        ticket.refresh_from_db()
        assert ticket.status.state == StatusState.OPEN
        assert ticket.closed_at is None and ticket.reopened_at is not None
        assert actions(ticket)[-2:] == [EventAction.REOPENED, EventAction.MESSAGE]

    def test_an_archived_ticket_takes_no_messages(self, ticket, customer, agent):
        services.ticket_status_set(ticket=ticket, by=agent, status=status("Archived"))
        with pytest.raises(ValidationError):
            services.ticket_message_add(ticket=ticket, user=customer, body="Hello?")
        assert ticket.thread.entries.count() == 1

    def test_a_message_brings_a_ticket_waiting_on_the_customer_back_to_open(
        self, ticket, customer, agent
    ):
        services.ticket_reply(
            ticket=ticket, by=agent, body="Which model?", status=status("Waiting on Customer")
        )
        services.ticket_message_add(ticket=ticket, user=customer, body="The LX-9")
        ticket.refresh_from_db()
        assert ticket.status == status("Open")
        event = ticket.thread.events.get(action=EventAction.STATUS, actor=customer)
        assert event.data["from"] == "Waiting on Customer"

    def test_a_message_leaves_other_open_statuses_alone(self, ticket, customer, agent):
        services.ticket_status_set(ticket=ticket, by=agent, status=status("In Progress"))
        services.ticket_message_add(ticket=ticket, user=customer, body="Any news?")
        ticket.refresh_from_db()
        assert ticket.status == status("In Progress")

    def test_strangers_and_agents_cannot_post_customer_messages(self, ticket, agent):
        for user in (UserFactory(), agent):
            with pytest.raises(PermissionDenied):
                services.ticket_message_add(ticket=ticket, user=user, body="Hi")

    def test_an_empty_message_is_refused(self, ticket, customer):
        with pytest.raises(ValidationError) as error:
            services.ticket_message_add(ticket=ticket, user=customer, body="   ")
        assert "body" in error.value.message_dict


class TestReplies:
    def test_a_reply_answers_and_claims_the_ticket(self, ticket, agent):
        entry = services.ticket_reply(ticket=ticket, by=agent, body="Try turning it off.")
        ticket.refresh_from_db()
        assert entry.kind == EntryKind.RESPONSE
        assert entry.message_id.startswith("<") and entry.message_id.endswith(">")
        assert ticket.is_answered
        assert ticket.first_response_at == ticket.last_response_at == entry.created_at
        assert ticket.assignee == agent
        assert actions(ticket)[1:] == [EventAction.RESPONSE, EventAction.CLAIMED]

    def test_the_first_response_time_is_kept(self, ticket, agent):
        first = services.ticket_reply(ticket=ticket, by=agent, body="One")
        second = services.ticket_reply(ticket=ticket, by=agent, body="Two")
        ticket.refresh_from_db()
        assert ticket.first_response_at == first.created_at
        assert ticket.last_response_at == second.created_at

    def test_auto_claim_can_be_turned_off(self, ticket, agent, settings):
        settings.HELPDESK_AUTO_CLAIM_ON_REPLY = False
        services.ticket_reply(ticket=ticket, by=agent, body="Hi")
        ticket.refresh_from_db()
        assert ticket.assignee is None

    def test_a_reply_can_close_the_ticket(self, ticket, agent):
        services.ticket_reply(ticket=ticket, by=agent, body="Fixed.", status=status("Resolved"))
        ticket.refresh_from_db()
        assert ticket.status == status("Resolved")
        assert ticket.closed_by == agent and ticket.closed_at is not None

    def test_closing_by_reply_needs_close_permission_and_then_nothing_is_sent(
        self, ticket, department
    ):
        limited = agent_user(department=department, role=role("Limited Access"))
        with pytest.raises(PermissionDenied):
            services.ticket_reply(ticket=ticket, by=limited, body="Done", status=closed_status())
        assert ticket.thread.entries.count() == 1
        assert actions(ticket) == [EventAction.CREATED]

    @pytest.mark.parametrize("name", ["Archived", "Deleted"])
    def test_no_replies_on_archived_or_deleted_tickets(self, ticket, agent, name):
        services.ticket_status_set(ticket=ticket, by=agent, status=status(name))
        with pytest.raises(ValidationError) as error:
            services.ticket_reply(ticket=ticket, by=agent, body="Hello?")
        assert "ticket" in error.value.message_dict
        assert ticket.thread.entries.count() == 1

    def test_view_only_agents_cannot_reply(self, ticket, department):
        viewer = agent_user(department=department, role=role("View Only"))
        with pytest.raises(PermissionDenied):
            services.ticket_reply(ticket=ticket, by=viewer, body="Hi")


class TestNotes:
    def test_notes_are_for_agents_and_hidden_from_customers(self, ticket, agent, customer):
        note = services.ticket_note_add(ticket=ticket, by=agent, body="Customer is VIP")
        assert note.kind == EntryKind.NOTE and note.is_internal
        seen_by_customer = selectors.ticket_entries_for_user(ticket=ticket, user=customer)
        seen_by_agent = selectors.ticket_entries_for_user(ticket=ticket, user=agent)
        assert note not in seen_by_customer
        assert note in seen_by_agent
        ticket.refresh_from_db()
        assert not ticket.is_answered  # a note answers nobody

    def test_customers_and_outside_agents_cannot_add_notes(self, ticket, customer):
        for user in (customer, agent_user(department=DepartmentFactory())):
            with pytest.raises(PermissionDenied):
                services.ticket_note_add(ticket=ticket, by=user, body="psst")


class TestAssignment:
    def test_assign_to_an_agent_and_a_team(self, ticket, agent, department):
        colleague = agent_user(department=department)
        team = Team()
        services.ticket_assign(ticket=ticket, by=agent, agent=colleague, team=team)
        ticket.refresh_from_db()
        assert (ticket.assignee, ticket.team) == (colleague, team)
        event = ticket.thread.events.get(action=EventAction.ASSIGNED)
        assert event.data["agent_id"] == colleague.pk and event.data["team"] == team.name

    def test_cannot_assign_to_agents_without_access_or_customers(self, ticket, agent, customer):
        outsider = agent_user(department=DepartmentFactory())
        for target in (outsider, customer):
            with pytest.raises(ValidationError) as error:
                services.ticket_assign(ticket=ticket, by=agent, agent=target)
            assert "agent" in error.value.message_dict

    def test_cannot_assign_to_an_inactive_team(self, ticket, agent):
        with pytest.raises(ValidationError):
            services.ticket_assign(ticket=ticket, by=agent, team=Team(is_active=False))

    def test_assigning_needs_the_permission(self, ticket, department):
        viewer = agent_user(department=department, role=role("View Only"))
        with pytest.raises(PermissionDenied):
            services.ticket_assign(ticket=ticket, by=viewer, agent=viewer)

    def test_claim_and_release(self, ticket, agent, department):
        services.ticket_claim(ticket=ticket, by=agent)
        ticket.refresh_from_db()
        assert ticket.assignee == agent
        colleague = agent_user(department=department, role=role("Limited Access"))
        with pytest.raises(ValidationError):
            services.ticket_claim(ticket=ticket, by=colleague)
        services.ticket_release(ticket=ticket, by=agent)
        ticket.refresh_from_db()
        assert ticket.assignee is None
        assert actions(ticket)[1:] == [EventAction.CLAIMED, EventAction.RELEASED]

    def test_releasing_someone_elses_ticket_needs_the_permission(self, ticket, agent, department):
        services.ticket_claim(ticket=ticket, by=agent)
        viewer = agent_user(department=department, role=role("View Only"))
        with pytest.raises(PermissionDenied):
            services.ticket_release(ticket=ticket, by=viewer)
        services.ticket_release(ticket=ticket, by=agent_user(department=department))
        ticket.refresh_from_db()
        assert ticket.assignee is None

    def test_an_assignee_releases_themselves_but_not_the_team(self, ticket, department):
        team = Team()
        limited = agent_user(department=department, role=role("Limited Access"), teams=[team])
        boss = agent_user(department=department)
        services.ticket_assign(ticket=ticket, by=boss, agent=limited, team=team)
        ticket.refresh_from_db()
        services.ticket_release(ticket=ticket, by=limited)
        viewer = agent_user(department=department, role=role("View Only"), teams=[team])
        services.ticket_assign(ticket=ticket, by=boss, agent=viewer)
        with pytest.raises(PermissionDenied):
            services.ticket_release(ticket=ticket, by=viewer, team=True)
        ticket.refresh_from_db()
        assert (ticket.assignee, ticket.team) == (viewer, team)

    def test_releasing_an_unassigned_ticket_is_an_error(self, ticket, agent):
        with pytest.raises(ValidationError):
            services.ticket_release(ticket=ticket, by=agent)


class TestTransfer:
    def test_transfer_moves_and_records_both_departments(self, ticket, agent, department):
        sales = DepartmentFactory(name="Sales")
        services.ticket_transfer(ticket=ticket, by=agent, department=sales, comment="Wrong desk")
        ticket.refresh_from_db()
        assert ticket.department == sales
        event = ticket.thread.events.get(action=EventAction.TRANSFERRED)
        assert event.data["from"] == department.name and event.data["to"] == "Sales"
        assert event.data["comment"] == "Wrong desk"

    def test_the_assignee_without_access_is_released(self, ticket, agent, department):
        sales = DepartmentFactory(name="Sales")
        stays = agent_user(department=department, extended={sales: role("All Access")})
        services.ticket_assign(ticket=ticket, by=agent, agent=stays)
        services.ticket_transfer(ticket=ticket, by=agent, department=sales)
        ticket.refresh_from_db()
        assert ticket.assignee == stays

        services.ticket_assign(ticket=ticket, by=stays, agent=stays)
        billing = DepartmentFactory(name="Billing")
        services.ticket_transfer(ticket=ticket, by=stays, department=billing)
        ticket.refresh_from_db()
        assert ticket.assignee is None
        event = ticket.thread.events.filter(action=EventAction.TRANSFERRED).last()
        assert event.data["released"] == stays.get_full_name()

    def test_a_closed_ticket_reopens_on_transfer(self, ticket, agent):
        services.ticket_status_set(ticket=ticket, by=agent, status=closed_status())
        services.ticket_transfer(ticket=ticket, by=agent, department=DepartmentFactory())
        ticket.refresh_from_db()
        assert ticket.status.state == StatusState.OPEN

    def test_an_archived_ticket_stays_archived_and_a_deleted_one_stays_put(
        self, ticket, department
    ):
        sales, legal = DepartmentFactory(), DepartmentFactory()
        everywhere = {sales: role("All Access"), legal: role("All Access")}
        agent = agent_user(department=department, extended=everywhere)
        services.ticket_status_set(ticket=ticket, by=agent, status=status("Archived"))
        services.ticket_transfer(ticket=ticket, by=agent, department=sales)
        ticket.refresh_from_db()
        assert ticket.status == status("Archived")
        services.ticket_status_set(ticket=ticket, by=agent, status=status("Deleted"))
        with pytest.raises(ValidationError):
            services.ticket_transfer(ticket=ticket, by=agent, department=legal)
        ticket.refresh_from_db()
        assert ticket.status == status("Deleted")

    def test_refuses_the_same_or_an_archived_department(self, ticket, agent, department):
        for target in (department, DepartmentFactory(is_active=False)):
            with pytest.raises(ValidationError) as error:
                services.ticket_transfer(ticket=ticket, by=agent, department=target)
            assert "department" in error.value.message_dict

    def test_needs_the_permission(self, ticket, department):
        viewer = agent_user(department=department, role=role("View Only"))
        with pytest.raises(PermissionDenied):
            services.ticket_transfer(ticket=ticket, by=viewer, department=DepartmentFactory())


class TestStatus:
    def test_closing_records_who_and_when_and_reopening_clears_it(self, ticket, agent):
        services.ticket_status_set(ticket=ticket, by=agent, status=closed_status())
        ticket.refresh_from_db()
        assert ticket.closed_by == agent and ticket.closed_at is not None
        services.ticket_status_set(ticket=ticket, by=agent, status=status("In Progress"))
        ticket.refresh_from_db()
        assert ticket.closed_at is None and ticket.closed_by is None
        assert ticket.reopened_at is not None
        assert actions(ticket)[1:] == [EventAction.CLOSED, EventAction.REOPENED]

    def test_moving_between_open_statuses(self, ticket, agent):
        services.ticket_status_set(ticket=ticket, by=agent, status=status("Waiting on Customer"))
        event = ticket.thread.events.get(action=EventAction.STATUS)
        assert event.data == {"from": "Open", "to": "Waiting on Customer", "comment": ""}

    @pytest.mark.parametrize(
        ("role_name", "target", "allowed"),
        [
            ("Limited Access", "In Progress", True),
            ("Limited Access", "Closed", False),
            ("Expanded Access", "Closed", True),
            ("Expanded Access", "Deleted", False),
            ("All Access", "Deleted", True),
            ("View Only", "In Progress", False),
        ],
    )
    def test_each_state_needs_its_permission(self, ticket, department, role_name, target, allowed):
        user = agent_user(department=department, role=role(role_name))
        if allowed:
            services.ticket_status_set(ticket=ticket, by=user, status=status(target))
            ticket.refresh_from_db()
            assert ticket.status == status(target)
        else:
            with pytest.raises(PermissionDenied):
                services.ticket_status_set(ticket=ticket, by=user, status=status(target))

    def test_a_customer_closes_their_own_ticket_but_nothing_else(self, ticket, customer, settings):
        with pytest.raises(PermissionDenied):
            services.ticket_status_set(ticket=ticket, by=customer, status=status("In Progress"))
        services.ticket_status_set(ticket=ticket, by=customer, status=closed_status())
        ticket.refresh_from_db()
        assert ticket.closed_by == customer

    def test_a_customer_cannot_close_when_the_help_desk_forbids(self, ticket, customer, settings):
        settings.HELPDESK_CUSTOMERS_CAN_CLOSE = False
        with pytest.raises(PermissionDenied):
            services.ticket_status_set(ticket=ticket, by=customer, status=closed_status())

    def test_setting_the_same_status_is_an_error(self, ticket, agent):
        with pytest.raises(ValidationError):
            services.ticket_status_set(ticket=ticket, by=agent, status=status("Open"))


class TestEdits:
    def test_priority_subject_and_topic(self, ticket, agent):
        topic = HelpTopicFactory()
        services.ticket_priority_set(ticket=ticket, by=agent, priority=priority("Emergency"))
        services.ticket_subject_edit(ticket=ticket, by=agent, subject="Printer is on fire")
        services.ticket_help_topic_set(ticket=ticket, by=agent, help_topic=topic)
        ticket.refresh_from_db()
        assert ticket.priority == priority("Emergency")
        assert ticket.subject == "Printer is on fire"
        assert ticket.help_topic == topic
        edits = ticket.thread.events.filter(action=EventAction.EDITED).order_by("pk")
        assert [e.data["field"] for e in edits] == ["subject", "help_topic"]
        assert edits[0].data["from"] == "Printer on fire"

    def test_edits_need_the_permission(self, ticket, department):
        limited = agent_user(department=department, role=role("Limited Access"))
        with pytest.raises(PermissionDenied):
            services.ticket_priority_set(ticket=ticket, by=limited, priority=priority("High"))
        with pytest.raises(PermissionDenied):
            services.ticket_subject_edit(ticket=ticket, by=limited, subject="Mine now")

    def test_an_empty_subject_is_refused(self, ticket, agent):
        with pytest.raises(ValidationError) as error:
            services.ticket_subject_edit(ticket=ticket, by=agent, subject=" ")
        assert "subject" in error.value.message_dict


class TestCollaborators:
    def test_add_by_address_and_remove(self, ticket, agent):
        collaborator = services.ticket_collaborator_add(
            ticket=ticket, by=agent, email="Boss@Example.com"
        )
        assert collaborator.user.email == "boss@example.com"
        with pytest.raises(ValidationError):
            services.ticket_collaborator_add(ticket=ticket, by=agent, email="boss@example.com")
        services.ticket_collaborator_remove(ticket=ticket, by=agent, user=collaborator.user)
        assert not Collaborator.objects.filter(ticket=ticket).exists()
        assert actions(ticket)[1:] == [EventAction.COLLAB_ADDED, EventAction.COLLAB_REMOVED]

    def test_the_customer_is_not_their_own_collaborator(self, ticket, agent, customer):
        with pytest.raises(ValidationError):
            services.ticket_collaborator_add(ticket=ticket, by=agent, user=customer)


class TestReferral:
    def test_a_referral_shows_the_ticket_to_another_department(self, ticket, agent):
        legal = DepartmentFactory(name="Legal")
        lawyer = agent_user(department=legal)
        assert not selectors.ticket_list_for_user(user=lawyer).exists()
        services.ticket_refer(ticket=ticket, by=agent, department=legal)
        assert list(selectors.ticket_list_for_user(user=lawyer)) == [ticket]
        with pytest.raises(ValidationError):
            services.ticket_refer(ticket=ticket, by=agent, department=legal)
        assert Referral.objects.count() == 1


# Every service, called once: each must leave exactly its event in the audit log.
SERVICE_CALLS = {
    "message": (lambda t, a, c: services.ticket_message_add(ticket=t, user=c, body="x"), "message"),
    "reply": (lambda t, a, c: services.ticket_reply(ticket=t, by=a, body="x"), "response"),
    "note": (lambda t, a, c: services.ticket_note_add(ticket=t, by=a, body="x"), "note"),
    "assign": (lambda t, a, c: services.ticket_assign(ticket=t, by=a, agent=a), "assigned"),
    "claim": (lambda t, a, c: services.ticket_claim(ticket=t, by=a), "claimed"),
    "transfer": (
        lambda t, a, c: services.ticket_transfer(ticket=t, by=a, department=DepartmentFactory()),
        "transferred",
    ),
    "refer": (
        lambda t, a, c: services.ticket_refer(ticket=t, by=a, department=DepartmentFactory()),
        "referred",
    ),
    "close": (
        lambda t, a, c: services.ticket_status_set(ticket=t, by=a, status=closed_status()),
        "closed",
    ),
    "status": (
        lambda t, a, c: services.ticket_status_set(ticket=t, by=a, status=status("In Progress")),
        "status",
    ),
    "priority": (
        lambda t, a, c: services.ticket_priority_set(ticket=t, by=a, priority=priority("High")),
        "priority",
    ),
    "subject": (
        lambda t, a, c: services.ticket_subject_edit(ticket=t, by=a, subject="New"),
        "edited",
    ),
    "topic": (
        lambda t, a, c: services.ticket_help_topic_set(
            ticket=t, by=a, help_topic=HelpTopicFactory()
        ),
        "edited",
    ),
    "collaborator": (
        lambda t, a, c: services.ticket_collaborator_add(ticket=t, by=a, email="cc@example.com"),
        "collab_added",
    ),
}


@pytest.mark.parametrize("name", SERVICE_CALLS)
def test_every_service_records_its_event_and_signals_after_commit(
    name, ticket, agent, customer, django_capture_on_commit_callbacks, settings
):
    settings.HELPDESK_AUTO_CLAIM_ON_REPLY = False
    call, action = SERVICE_CALLS[name]
    before = ticket.thread.events.count()
    heard = []
    signals.ticket_event.connect(
        lambda **kw: heard.append(kw["event"].action), weak=False, dispatch_uid="test_heard"
    )
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            call(ticket, agent, customer)
        assert heard == []  # nothing is announced before the transaction commits
        for callback in callbacks:
            callback()
    finally:
        signals.ticket_event.disconnect(dispatch_uid="test_heard")
    new = list(ticket.thread.events.order_by("pk")[before:])
    assert [event.action for event in new] == [action]
    assert new[0].actor in (agent, customer)
    assert new[0].actor_name
    assert heard == [action]


def test_deferred_events_are_written_together_when_the_block_ends(
    ticket, agent, customer, django_capture_on_commit_callbacks
):
    # A run of fetched mail: the run's audit events go in with one statement at its end, and
    # one recorded in work that was rolled back (a savepoint) is neither written nor announced.
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    before = ticket.thread.events.count()
    heard = []
    signals.ticket_event.connect(
        lambda **kw: heard.append((kw["event"].pk, kw["event"].action)),
        weak=False,
        dispatch_uid="test_heard",
    )
    try:
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            with CaptureQueriesContext(connection) as captured, services.events_deferred():
                kept = services.event_record(ticket=ticket, action=EventAction.NOTE, actor=agent)
                try:
                    with transaction.atomic():
                        services.event_record(
                            ticket=ticket, action=EventAction.TRANSFERRED, actor=agent
                        )
                        raise ValueError("undone")
                except ValueError:
                    pass
                last = services.event_record(
                    ticket=ticket, action=EventAction.STATUS, actor=customer
                )
                assert kept.pk is None
                assert ticket.thread.events.count() == before  # nothing written yet
            inserts = [
                query["sql"]
                for query in captured.captured_queries
                if query["sql"].startswith('INSERT INTO "tickets_threadevent"')
                or query["sql"].startswith("INSERT INTO `tickets_threadevent`")
            ]
            assert len(inserts) == 1
            assert kept.pk is not None and last.pk > kept.pk
    finally:
        signals.ticket_event.disconnect(dispatch_uid="test_heard")
    assert actions(ticket)[before:] == [EventAction.NOTE, EventAction.STATUS]
    assert heard == [(kept.pk, EventAction.NOTE), (last.pk, EventAction.STATUS)]


def test_deferred_events_are_not_written_when_the_block_raises(ticket, agent):
    from django.db import transaction

    before = ticket.thread.events.count()
    with pytest.raises(RuntimeError), transaction.atomic(), services.events_deferred():
        services.event_record(ticket=ticket, action=EventAction.NOTE, actor=agent)
        raise RuntimeError("the run broke")
    assert ticket.thread.events.count() == before


def test_a_ticket_locked_ahead_is_not_read_again_unless_another_copy_changed_it(
    ticket, customer, django_assert_num_queries
):
    # A run of mail locks the tickets its mails answer in one query; the first change through
    # that very instance reads nothing again. A change through another instance first makes
    # the kept one stale: it is read again, and the earlier change is not overwritten.
    from django.db import transaction

    from tickets.models import Ticket
    from tickets.related import related_attach

    with transaction.atomic():
        kept = Ticket.objects.select_for_update().get(pk=ticket.pk)
        related_attach([kept], ("status",))  # kept per process, read once
        with services.tickets_locked_ahead([kept]):
            with django_assert_num_queries(0):
                services._lock(kept)  # the first change
            with django_assert_num_queries(1):
                services._lock(kept)  # a second one reads it again
    with transaction.atomic():
        kept = Ticket.objects.select_for_update().get(pk=ticket.pk)
        with services.tickets_locked_ahead([kept]):
            other = Ticket.objects.get(pk=ticket.pk)
            services.ticket_message_add(ticket=other, user=customer, body="Flux capacitor")
            services.ticket_message_add(ticket=kept, user=customer, body="Gigawatts")
    ticket.refresh_from_db()
    assert "flux" in ticket.search_document.lower()
    assert "gigawatts" in ticket.search_document.lower()
