"""Who may see and do what: the rules of accounts.permissions, table by table."""

import pytest
from django.test import override_settings

from accounts.models import Agent, User
from accounts.permissions import can, forget_scope, is_agent, visible_tickets
from tests.accounts.factories import OrganizationFactory, UserFactory, agent_user, role
from tests.routing.factories import DepartmentFactory, TeamFactory
from tests.tickets.factories import open_ticket, status
from tickets.models import Collaborator, Referral

pytestmark = pytest.mark.django_db

ACTIONS = [
    "ticket.reply",
    "ticket.close",
    "ticket.assign",
    "ticket.transfer",
    "ticket.edit",
    "ticket.delete",
    "ticket.release",
    "ticket.refer",
]
Y, N = True, False
# What each shipped role allows on a ticket of the agent's primary department.
ROLE_TABLE = {
    "All Access": [Y, Y, Y, Y, Y, Y, Y, Y],
    "Expanded Access": [Y, Y, Y, Y, Y, N, Y, Y],
    "Limited Access": [Y, N, Y, Y, N, N, Y, Y],
    "View Only": [N, N, N, N, N, N, N, N],
}


@pytest.fixture
def departments():
    return {
        "home": DepartmentFactory(name="Home"),
        "extended": DepartmentFactory(name="Extended"),
        "other": DepartmentFactory(name="Other"),
    }


@pytest.fixture
def tickets(departments):
    return {
        key: open_ticket(department=dept, subject=f"In {key}") for key, dept in departments.items()
    }


def make_agent(role_name: str, departments: dict) -> User:
    """Primary `role_name` in Home; extended Limited Access in Extended; nothing in Other."""
    return agent_user(
        department=departments["home"],
        role=role(role_name),
        extended={departments["extended"]: role("Limited Access")},
    )


@pytest.mark.parametrize("role_name", ROLE_TABLE)
@pytest.mark.parametrize("where", ["home", "extended", "other"])
def test_role_by_department_matrix(role_name, where, departments, tickets):
    user = make_agent(role_name, departments)
    ticket = tickets[where]
    if where == "home":
        expected = dict(zip(ACTIONS, ROLE_TABLE[role_name], strict=True))
    elif where == "extended":
        expected = dict(zip(ACTIONS, ROLE_TABLE["Limited Access"], strict=True))
    else:
        expected = dict.fromkeys(ACTIONS, False)

    assert can(user, "ticket.view", ticket) is (where != "other")
    assert (ticket in visible_tickets(user)) is (where != "other")
    assert {action: can(user, action, ticket) for action in ACTIONS} == expected


@pytest.mark.parametrize("role_name", ROLE_TABLE)
def test_opening_tickets_follows_the_role_of_each_department(role_name, departments):
    user = make_agent(role_name, departments)
    assert can(user, "ticket.create", departments["home"]) is (role_name != "View Only")
    assert can(user, "ticket.create", departments["extended"]) is True  # Limited Access
    assert can(user, "ticket.create", departments["other"]) is False


def test_an_agent_without_access_gets_nothing(departments, tickets):
    outsider = agent_user(department=DepartmentFactory(name="Elsewhere"), role=role("All Access"))
    assert list(visible_tickets(outsider)) == []
    assert not any(can(outsider, action, t) for t in tickets.values() for action in ACTIONS)


def test_assigned_only_agent_sees_assigned_and_team_tickets_only(departments, tickets):
    team = TeamFactory()
    user = agent_user(department=departments["home"], assigned_only=True, teams=[team])
    assert list(visible_tickets(user)) == []
    tickets["other"].assignee = user
    tickets["other"].save()
    tickets["extended"].team = team
    tickets["extended"].save()
    assert set(visible_tickets(user)) == {tickets["other"], tickets["extended"]}


def test_assignment_outside_the_departments_uses_the_primary_role(departments, tickets):
    viewer = make_agent("View Only", departments)
    ticket = tickets["other"]
    ticket.assignee = viewer
    ticket.save()
    assert can(viewer, "ticket.view", ticket)
    assert not can(viewer, "ticket.reply", ticket)

    worker = make_agent("All Access", departments)
    ticket.assignee = worker
    ticket.save()
    assert can(worker, "ticket.close", ticket)


def test_team_members_see_their_teams_tickets_and_others_do_not(departments, tickets):
    team = TeamFactory()
    member = agent_user(department=DepartmentFactory(), teams=[team])
    stranger = agent_user(department=DepartmentFactory())
    tickets["other"].team = team
    tickets["other"].save()
    assert list(visible_tickets(member)) == [tickets["other"]]
    assert list(visible_tickets(stranger)) == []


def test_an_inactive_team_gives_no_access(departments, tickets):
    team = TeamFactory(is_active=False)
    member = agent_user(department=DepartmentFactory(), teams=[team])
    tickets["other"].team = team
    tickets["other"].save()
    assert list(visible_tickets(member)) == []


@pytest.mark.parametrize("target", ["agent", "team", "department"])
def test_a_referral_shows_the_ticket(target, departments, tickets):
    team = TeamFactory()
    own_department = DepartmentFactory()
    user = agent_user(department=own_department, teams=[team])
    ticket = tickets["other"]
    assert not can(user, "ticket.view", ticket)
    targets = {"agent": user, "team": team, "department": own_department}
    Referral.objects.create(ticket=ticket, **{target: targets[target]})
    assert can(user, "ticket.view", ticket)
    assert list(visible_tickets(user)) == [ticket]


def test_inactive_agents_and_users_lose_access(departments, tickets):
    user = make_agent("All Access", departments)
    Agent.objects.filter(user=user).update(is_active=False)
    forget_scope(user)
    assert not is_agent(user)
    assert not can(user, "ticket.view", tickets["home"])

    other = make_agent("All Access", departments)
    other.is_active = False
    other.save()
    assert list(visible_tickets(other)) == []


def test_a_superuser_may_do_everything(departments, tickets):
    admin = User.objects.create_superuser("root@example.com", "x")
    assert is_agent(admin)
    assert set(visible_tickets(admin)) == set(tickets.values())
    assert all(can(admin, action, t) for t in tickets.values() for action in ACTIONS)
    assert can(admin, "admin.settings")
    assert can(admin, "ticket.create", departments["other"])


def test_global_permissions_come_from_the_primary_role(departments):
    assert not can(make_agent("All Access", departments), "admin.settings")
    administrator = agent_user(department=departments["home"], role=role("Administrator"))
    assert can(administrator, "admin.settings")
    assert can(administrator, "user.delete")


class TestCustomers:
    def test_see_their_own_tickets_only(self, tickets):
        alice, bob = UserFactory(), UserFactory()
        mine = open_ticket(user=alice)
        open_ticket(user=bob)
        assert list(visible_tickets(alice)) == [mine]
        assert can(alice, "ticket.view", mine)
        assert can(alice, "ticket.message", mine)
        assert not any(can(alice, "ticket.view", t) for t in tickets.values())

    def test_never_act_as_agents(self):
        alice = UserFactory()
        mine = open_ticket(user=alice)
        assert not is_agent(alice)
        assert not any(can(alice, action, mine) for action in ACTIONS if action != "ticket.close")

    @pytest.mark.parametrize("shares", [True, False])
    def test_see_their_organizations_tickets_when_it_shares(self, shares):
        org = OrganizationFactory(share_tickets=shares)
        alice, bob = UserFactory(organization=org), UserFactory(organization=org)
        bobs = open_ticket(user=bob)
        assert bobs.organization == org
        assert (bobs in visible_tickets(alice)) is shares
        assert can(alice, "ticket.view", bobs) is shares
        # Seeing a colleague's ticket never means closing it.
        assert not can(alice, "ticket.close", bobs)

    def test_see_tickets_they_are_copied_on(self):
        alice, bob = UserFactory(), UserFactory()
        bobs = open_ticket(user=bob)
        Collaborator.objects.create(ticket=bobs, user=alice)
        assert list(visible_tickets(alice)) == [bobs]
        assert can(alice, "ticket.message", bobs)
        assert not can(alice, "ticket.close", bobs)

    def test_never_see_deleted_tickets(self):
        alice = UserFactory()
        mine = open_ticket(user=alice)
        mine.status = status("Deleted")
        mine.save()
        assert list(visible_tickets(alice)) == []
        assert not can(alice, "ticket.view", mine)

    def test_close_their_own_ticket_only_when_the_help_desk_allows(self):
        alice = UserFactory()
        mine = open_ticket(user=alice)
        assert can(alice, "ticket.close", mine)
        with override_settings(HELPDESK_CUSTOMERS_CAN_CLOSE=False):
            assert not can(alice, "ticket.close", mine)

    def test_anonymous_visitors_see_nothing(self, tickets):
        from django.contrib.auth.models import AnonymousUser

        assert list(visible_tickets(AnonymousUser())) == []
        assert not can(AnonymousUser(), "ticket.view", tickets["home"])


def test_visible_tickets_and_can_view_agree(departments, tickets):
    """The list rule and the single-ticket rule never disagree, for anyone."""
    org = OrganizationFactory(share_tickets=True)
    team = TeamFactory()
    people = [
        make_agent("All Access", departments),
        make_agent("View Only", departments),
        agent_user(department=departments["other"], assigned_only=True, teams=[team]),
        UserFactory(organization=org),
        UserFactory(),
    ]
    extra = open_ticket(user=UserFactory(organization=org), department=departments["other"])
    extra.team = team
    extra.save()
    everything = [*tickets.values(), extra]
    for person in people:
        listed = set(visible_tickets(person))
        assert listed == {t for t in everything if can(person, "ticket.view", t)}, person


def test_unknown_permissions_are_a_programming_error(tickets):
    with pytest.raises(ValueError, match="Unknown permission"):
        can(UserFactory(), "ticket.fly", tickets["home"])


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_customer_just_made_is_no_agent_without_a_query_until_made_one(
    departments, django_assert_num_queries
):
    from accounts.services import agent_create, user_get_or_create_by_email

    customer = user_get_or_create_by_email(email="new@customers.example")
    read_again = User.objects.get(pk=customer.pk)
    with django_assert_num_queries(0):
        assert not is_agent(customer)
        assert not is_agent(read_again)  # kept per process, not only on the instance
    agent_create(user=read_again, department=departments["home"], role=role("All Access"))
    assert is_agent(User.objects.get(pk=customer.pk))
