"""Routing a new ticket: bans, filters and their actions, help topic and department
defaults, on every channel through `ticket_open`."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from accounts.models import Role, User
from helpdesk.lib.memo import tokens_snapshot
from routing.filters import DraftRejected
from routing.models import Filter, RuleField, RuleOperator
from routing.services import filters_load, filters_load_cached, sender_banned
from tests.accounts.factories import OrganizationFactory, UserFactory, agent_user
from tests.routing.factories import (
    BannedAddressFactory,
    DepartmentFactory,
    FilterFactory,
    HelpTopicFactory,
    TeamFactory,
    cti,
)
from tests.tickets.factories import open_ticket, priority, status
from tickets.models import Collaborator, EventAction, Source, StatusState, ThreadEvent, Ticket

pytestmark = pytest.mark.django_db

Op = RuleOperator
F = RuleField
PRINTER = [(F.SUBJECT, Op.CONTAINS, "printer")]


def created_event(ticket):
    return ticket.thread.events.get(action=EventAction.CREATED)


class TestBans:
    def test_a_banned_address_is_found_whatever_its_case(self):
        ban = BannedAddressFactory(address="pest@example.com")
        assert sender_banned("Pest@Example.COM") == ban
        assert sender_banned("other@example.com") is None

    def test_a_banned_domain_covers_its_subdomains_but_not_lookalikes(self):
        ban = BannedAddressFactory(address="spam.example")
        assert sender_banned("anyone@spam.example") == ban
        assert sender_banned("anyone@mail.spam.example") == ban
        assert sender_banned("anyone@notspam.example") is None

    def test_the_address_ban_wins_over_the_domain_ban(self):
        BannedAddressFactory(address="spam.example")
        exact = BannedAddressFactory(address="boss@spam.example")
        assert sender_banned("boss@spam.example") == exact

    def test_a_ban_is_stored_in_lower_case_and_domains_may_be_written_with_an_at(self):
        for written, stored in [
            ("  Pest@Example.COM ", "pest@example.com"),
            ("@Spam.example", "spam.example"),
            ("*@spam.example", "spam.example"),
        ]:
            ban = BannedAddressFactory.build(address=written)
            ban.full_clean()
            assert ban.address == stored
        with pytest.raises(ValidationError):
            BannedAddressFactory.build(address="not a domain").full_clean()
        BannedAddressFactory(address="pest@example.com")
        with pytest.raises(ValidationError):
            BannedAddressFactory.build(address="PEST@example.com").full_clean()

    @pytest.mark.parametrize("source", [Source.EMAIL, Source.WEB, Source.API, Source.PHONE])
    def test_a_banned_sender_opens_no_ticket_on_any_channel(self, source):
        BannedAddressFactory(address="spam.example")
        with pytest.raises(ValidationError) as error:
            open_ticket(email="Bot@Spam.example", source=source)
        assert error.value.message_dict["email"] == [
            "bot@spam.example is banned from opening tickets."
        ]
        assert not Ticket.objects.exists()
        assert not User.objects.filter(email="bot@spam.example").exists()

    def test_an_agent_cannot_open_a_ticket_for_a_banned_customer(self, agent):
        customer = UserFactory(email="pest@example.com")
        BannedAddressFactory(address="pest@example.com")
        with pytest.raises(ValidationError):
            open_ticket(user=customer, by=agent, source=Source.PHONE)


class TestReject:
    def test_a_rejected_draft_leaves_nothing_behind(self):
        FilterFactory(name="Spam words", reject=True, rules=[(F.BODY, Op.CONTAINS, "viagra")])
        users, events = User.objects.count(), ThreadEvent.objects.count()
        with pytest.raises(DraftRejected) as error:
            open_ticket(email="new@stranger.example", body="Cheap VIAGRA here")
        assert error.value.filter_name == "Spam words"
        assert isinstance(error.value, PermissionDenied)
        assert not Ticket.objects.exists()
        assert (User.objects.count(), ThreadEvent.objects.count()) == (users, events)

    def test_a_filter_that_rejects_takes_no_other_action(self, department):
        filter_ = FilterFactory.build(reject=True, department=department)
        with pytest.raises(ValidationError) as error:
            filter_.full_clean()
        assert "reject" in error.value.message_dict

    def test_other_mail_still_gets_through(self):
        FilterFactory(reject=True, rules=[(F.BODY, Op.CONTAINS, "viagra")])
        assert open_ticket(body="My printer is on fire")


class TestActions:
    def test_set_department_and_priority(self):
        sales = DepartmentFactory(name="Sales")
        FilterFactory(department=sales, priority=priority("High"), rules=PRINTER)
        ticket = open_ticket()
        assert (ticket.department, ticket.priority) == (sales, priority("High"))
        assert created_event(ticket).data["filters"]

    def test_a_filter_department_overrides_the_channel_and_topic(self):
        sales, mailbox_department = DepartmentFactory(), DepartmentFactory()
        FilterFactory(department=sales, rules=PRINTER)
        topic = HelpTopicFactory(department=DepartmentFactory())
        ticket = open_ticket(department=mailbox_department, help_topic=topic)
        assert ticket.department == sales

    def test_set_an_open_status(self):
        FilterFactory(status=status("In Progress"), rules=PRINTER)
        assert open_ticket().status == status("In Progress")

    def test_set_a_closed_status_closes_the_new_ticket(self):
        FilterFactory(status=status("Closed"), rules=PRINTER)
        ticket = open_ticket()
        assert ticket.status.state == StatusState.CLOSED and ticket.closed_at is not None
        assert created_event(ticket).data["status"] == "Closed"

    def test_a_filter_cannot_set_archived_or_deleted(self):
        for name in ("Archived", "Deleted"):
            with pytest.raises(ValidationError) as error:
                FilterFactory.build(status=status(name)).full_clean()
            assert "status" in error.value.message_dict

    def test_set_help_topic_applies_that_topics_defaults(self):
        billing = DepartmentFactory(name="Billing")
        topic = HelpTopicFactory(department=billing, priority=priority("Low"))
        FilterFactory(help_topic=topic, rules=PRINTER)
        ticket = open_ticket()
        assert (ticket.help_topic, ticket.department, ticket.priority) == (
            topic,
            billing,
            priority("Low"),
        )

    def test_set_cti(self):
        item = cti("Hardware", "Printer", "Fire")
        FilterFactory(cti_item=item, rules=PRINTER)
        ticket = open_ticket()
        assert (ticket.cti_category.name, ticket.cti_type.name, ticket.cti_item) == (
            "Hardware",
            "Printer",
            item,
        )
        assert created_event(ticket).data["cti"] == "Hardware / Printer / Fire"

    def test_assign_an_agent_records_the_filter(self, department):
        fixer = agent_user(department=department)
        FilterFactory(name="Printers to Fixer", assignee=fixer, rules=PRINTER)
        ticket = open_ticket(department=department)
        assert ticket.assignee == fixer
        event = ticket.thread.events.get(action=EventAction.ASSIGNED)
        assert event.actor is None and event.data["reason"] == "filter Printers to Fixer"

    def test_an_agent_the_department_does_not_accept_is_not_assigned(self, department):
        outsider = agent_user(department=DepartmentFactory())
        FilterFactory(assignee=outsider, rules=PRINTER)
        ticket = open_ticket(department=department)
        assert ticket.assignee is None
        assert "cannot work on tickets of" in created_event(ticket).data["unassigned"]

    def test_assign_a_team(self, department):
        team = TeamFactory(name="Printers")
        member = agent_user(department=DepartmentFactory(), teams=[team])
        FilterFactory(team=team, rules=PRINTER)
        ticket = open_ticket(department=department)
        assert ticket.team == team
        assert ticket in Ticket.objects.filter(team__in=[team])  # the "My teams" queue
        from accounts.permissions import can

        assert can(member, "ticket.view", ticket)

    def test_an_inactive_team_is_not_assigned(self, department):
        FilterFactory(team=TeamFactory(is_active=False), rules=PRINTER)
        assert open_ticket(department=department).team is None

    def test_add_a_collaborator(self):
        FilterFactory(collaborator_email="Manager@Customers.example", rules=PRINTER)
        ticket = open_ticket()
        assert Collaborator.objects.get(ticket=ticket).user.email == "manager@customers.example"

    def test_disable_the_auto_response(self):
        FilterFactory(disable_auto_response=True, rules=PRINTER)
        assert created_event(open_ticket()).data["auto_respond"] is False
        assert created_event(open_ticket(subject="Other")).data["auto_respond"] is True

    def test_rules_on_the_organization_and_help_topic(self):
        OrganizationFactory(name="ACME", domains=["acme.example"])
        vip = DepartmentFactory(name="VIP")
        FilterFactory(department=vip, rules=[(F.ORGANIZATION, Op.EQUALS, "acme")])
        assert open_ticket(email="new@acme.example").department == vip
        assert open_ticket(email="new@other.example").department != vip
        topic = HelpTopicFactory(name="Returns")
        FilterFactory(priority=priority("Emergency"), rules=[(F.HELP_TOPIC, Op.EQUALS, "returns")])
        assert open_ticket(help_topic=topic).priority == priority("Emergency")

    def test_rules_on_mail_addresses_and_headers(self):
        sales = DepartmentFactory()
        FilterFactory(
            department=sales,
            match="any",
            rules=[(F.TO, Op.EQUALS, "sales@ours.example"), (F.HEADER, Op.EQUALS, "1", "X-Sale")],
        )
        assert open_ticket(to=["Sales@ours.example"], source=Source.EMAIL).department == sales
        assert open_ticket(headers={"x-sale": "1"}).department == sales
        assert open_ticket(cc=["sales@ours.example"]).department != sales

    def test_filters_load_in_one_query(self, django_assert_num_queries):
        for n in range(3):
            FilterFactory(department=DepartmentFactory(), rules=PRINTER * 2, sort_order=3 - n)
        FilterFactory(is_active=False, rules=PRINTER)
        with django_assert_num_queries(1):
            loaded = filters_load()
            assert [len(f.loaded_rules) for f in loaded] == [2, 2, 2]
            assert [f.sort_order for f in loaded] == [1, 2, 3]
            assert all(f.department.name for f in loaded)


class TestHelpTopicDefaults:
    def test_a_topic_routes_its_tickets(self):
        billing = DepartmentFactory(name="Billing")
        team = TeamFactory()
        topic = HelpTopicFactory(department=billing, priority=priority("High"), team=team)
        ticket = open_ticket(help_topic=topic)
        assert (ticket.department, ticket.priority, ticket.team) == (
            billing,
            priority("High"),
            team,
        )
        event = ticket.thread.events.get(action=EventAction.ASSIGNED)
        assert event.data["reason"] == f"help topic {topic}"

    def test_a_topic_assigns_its_agent(self, department):
        fixer = agent_user(department=department)
        topic = HelpTopicFactory(department=department, assignee=fixer)
        assert open_ticket(help_topic=topic).assignee == fixer

    def test_a_filter_assignment_wins_over_the_topic(self, department):
        fixer, other = agent_user(department=department), agent_user(department=department)
        topic = HelpTopicFactory(department=department, assignee=other)
        FilterFactory(assignee=fixer, rules=PRINTER)
        assert open_ticket(help_topic=topic).assignee == fixer

    def test_a_topic_without_auto_response_turns_it_off(self):
        topic = HelpTopicFactory(auto_response=False)
        assert created_event(open_ticket(help_topic=topic)).data["auto_respond"] is False

    def test_the_department_default_priority_comes_after_the_topic(self):
        department = DepartmentFactory(default_priority=priority("Low"))
        assert open_ticket(department=department).priority == priority("Low")
        topic = HelpTopicFactory(department=department, priority=priority("High"))
        assert open_ticket(help_topic=topic).priority == priority("High")

    def test_a_department_without_auto_response_turns_it_off(self):
        department = DepartmentFactory(auto_response=False)
        assert created_event(open_ticket(department=department)).data["auto_respond"] is False

    def test_the_channel_may_turn_off_the_auto_response(self):
        assert created_event(open_ticket(auto_respond=False)).data["auto_respond"] is False

    def test_an_inactive_topic_is_refused(self):
        with pytest.raises(ValidationError):
            open_ticket(help_topic=HelpTopicFactory(is_active=False))


class TestOpeningAsAnAgent:
    def test_an_agent_opens_a_ticket_assigned_and_classified(self, department, agent):
        item = cti("Hardware", "Printer", "Jam")
        ticket = open_ticket(
            by=agent, department=department, assignee=agent, cti_item=item, source=Source.PHONE
        )
        assert (ticket.assignee, ticket.cti_item) == (agent, item)
        event = ticket.thread.events.get(action=EventAction.ASSIGNED)
        assert event.actor == agent

    def test_assigning_at_creation_needs_the_right_to_assign(self, department):
        openers = Role.objects.create(name="Openers", permissions=["ticket.create"])
        clerk = agent_user(department=department, role=openers)
        assert open_ticket(by=clerk, department=department).assignee is None
        with pytest.raises(PermissionDenied):
            open_ticket(by=clerk, department=department, assignee=clerk)

    def test_customers_cannot_assign_or_set_a_status(self, department, agent):
        with pytest.raises(PermissionDenied):
            open_ticket(department=department, assignee=agent)
        with pytest.raises(PermissionDenied):
            open_ticket(status=status("In Progress"))

    def test_an_archived_classification_is_refused(self, agent, department):
        item = cti("Old", "Stuff", "Gone")
        item.is_active = False
        item.save()
        with pytest.raises(ValidationError) as error:
            open_ticket(by=agent, department=department, cti_item=item)
        assert "cti_item" in error.value.message_dict


def test_a_department_or_topic_a_filter_uses_cannot_be_deleted():
    from django.db.models import ProtectedError

    sales = DepartmentFactory()
    topic = HelpTopicFactory()
    FilterFactory(department=sales, help_topic=topic, rules=PRINTER)
    for target in (sales, topic):
        with pytest.raises(ProtectedError):
            target.delete()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # commits, as in production
@pytest.mark.parametrize("shared", [True, False])
def test_a_changed_filter_routes_the_next_ticket(shared, settings, django_assert_num_queries):
    """The filters are kept per process. With a cache every process shares, its version
    token alone says whether they changed; with a per-process one, a small query does."""
    settings.HELPDESK_SHARED_CACHE = shared
    sales = DepartmentFactory(name="Sales")
    rule = FilterFactory(department=sales, rules=PRINTER).rules.get()
    assert open_ticket(subject="printer jam").department == sales
    with django_assert_num_queries(0 if shared else 1):
        assert len(filters_load_cached()) == 1
    rule.value = "scanner"
    rule.save()
    assert open_ticket(subject="printer jam").department != sales
    assert open_ticket(subject="scanner jam").department == sales


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # commits, as in production
def test_a_run_of_mail_reads_the_filters_stamp_once(settings, django_assert_num_queries):
    """With a per-process cache, a change made in another process shows in the filters'
    stamp. A run of fetched mail reads it once, as a request reads the version tokens once:
    a filter turned on elsewhere meanwhile routes from the next run on."""
    settings.HELPDESK_SHARED_CACHE = False
    sales, hardware = DepartmentFactory(name="Sales"), DepartmentFactory(name="Hardware")
    FilterFactory(department=sales, rules=PRINTER)
    scanners = FilterFactory(
        department=hardware, is_active=False, rules=[(F.SUBJECT, Op.CONTAINS, "scanner")]
    )
    with tokens_snapshot():
        assert open_ticket(subject="printer jam").department == sales
        with django_assert_num_queries(0):
            assert len(filters_load_cached()) == 1
        # Another process turns the second filter on (no signal reaches this one).
        Filter.objects.filter(pk=scanners.pk).update(is_active=True, updated_at=timezone.now())
        assert open_ticket(subject="scanner jam").department != hardware
    with tokens_snapshot():
        assert open_ticket(subject="scanner jam").department == hardware
