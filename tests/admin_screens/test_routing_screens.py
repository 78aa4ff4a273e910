"""Departments, help topics, teams, CTI and bans: create, edit, archive, reorder, delete."""

import pytest
from django.urls import reverse

from helpdesk.models import AdminLogEntry
from routing.models import BannedAddress, Category, CtiItem, CtiType, Department, HelpTopic, Team
from tests.accounts.factories import AgentFactory, agent_user
from tests.routing.factories import (
    BannedAddressFactory,
    CategoryFactory,
    DepartmentFactory,
    HelpTopicFactory,
    TeamFactory,
    cti,
)
from tests.tickets.factories import open_ticket, priority

pytestmark = pytest.mark.django_db


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_an_admin_creates_a_nested_department(admin_client, department):
    response = admin_client.post(
        reverse("staff_admin:department_create"),
        {
            "name": "Billing",
            "parent": department.pk,
            "is_public": "on",
            "auto_response": "on",
            "auto_assign": "round_robin",
            "assign_members_only": "on",
        },
        follow=True,
    )
    created = Department.objects.get(name="Billing")
    assert created.parent == department
    assert created.auto_assign == "round_robin"
    assert "“Billing” was saved." in _messages(response)
    assert "Helpdesk / Billing" in response.content.decode()


def test_a_department_cannot_be_its_own_parent(admin_client, department):
    child = DepartmentFactory(name="Child", parent=department)
    response = admin_client.post(
        reverse("staff_admin:department_edit", args=[department.pk]),
        {"name": "Helpdesk", "parent": child.pk, "auto_assign": "none"},
    )
    assert response.status_code == 200
    assert "A parent cannot be one of its own children." in response.content.decode()
    department.refresh_from_db()
    assert department.parent is None


def test_deleting_a_department_in_use_is_refused_with_what_uses_it(admin_client, department):
    response = admin_client.post(
        reverse("staff_admin:department_delete", args=[department.pk]), follow=True
    )
    assert Department.objects.filter(pk=department.pk).exists()
    [message] = _messages(response)
    assert message == "Helpdesk cannot be deleted: it is used by 1 agents. Archive it instead."
    assert not AdminLogEntry.objects.filter(action="delete").exists()


def test_an_unused_department_is_deleted_and_logged(admin_client):
    spare = DepartmentFactory(name="Spare")
    admin_client.post(reverse("staff_admin:department_delete", args=[spare.pk]))
    assert not Department.objects.filter(pk=spare.pk).exists()
    entry = AdminLogEntry.objects.get(action="delete")
    assert entry.object_repr == "Spare"
    assert entry.object_id == str(spare.pk)
    assert entry.changes["name"] == ["Spare", None]


def test_delete_needs_post(admin_client):
    spare = DepartmentFactory(name="Spare")
    response = admin_client.get(reverse("staff_admin:department_delete", args=[spare.pk]))
    assert response.status_code == 405
    assert Department.objects.filter(pk=spare.pk).exists()


def test_archive_and_restore_a_department(admin_client):
    spare = DepartmentFactory(name="Spare")
    admin_client.post(reverse("staff_admin:department_archive", args=[spare.pk]))
    spare.refresh_from_db()
    assert not spare.is_active
    page = admin_client.get(reverse("staff_admin:department_list")).content.decode()
    assert "Archived" in page
    admin_client.post(reverse("staff_admin:department_restore", args=[spare.pk]))
    spare.refresh_from_db()
    assert spare.is_active
    assert list(AdminLogEntry.objects.order_by("pk").values_list("action", flat=True)) == [
        "archive",
        "restore",
    ]


def test_the_department_list_runs_a_fixed_number_of_queries(
    admin_client, department, django_assert_max_num_queries
):
    def load() -> int:
        with django_assert_max_num_queries(12) as captured:
            response = admin_client.get(reverse("staff_admin:department_list"))
        assert response.status_code == 200
        return len(captured.captured_queries)

    load()  # the first page of a test also reads the (then cached) help desk settings
    DepartmentFactory(name="Sales", parent=department, manager=AgentFactory(department=department))
    few = load()
    for n in range(15):
        parent = DepartmentFactory(name=f"Region {n}", parent=department)
        DepartmentFactory(name=f"Office {n}", parent=parent, manager=AgentFactory())
    assert load() == few


def test_department_names_are_escaped(admin_client):
    DepartmentFactory(name="<script>alert(1)</script>")
    page = admin_client.get(reverse("staff_admin:department_list")).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_an_admin_creates_a_help_topic_with_defaults(admin_client, department):
    response = admin_client.post(
        reverse("staff_admin:topic_create"),
        {
            "name": "Refunds",
            "is_public": "on",
            "department": department.pk,
            "priority": priority("High").pk,
            "auto_response": "on",
        },
    )
    assert response.status_code == 302
    topic = HelpTopic.objects.get(name="Refunds")
    assert topic.department == department
    assert topic.priority.name == "High"


def test_a_topic_assigns_to_an_agent_or_a_team_not_both(admin_client, agent):
    response = admin_client.post(
        reverse("staff_admin:topic_create"),
        {"name": "Both", "assignee": agent.pk, "team": TeamFactory().pk},
    )
    assert "Assign new tickets to an agent or to a team, not both." in response.content.decode()
    assert not HelpTopic.objects.filter(name="Both").exists()


def test_topics_are_reordered(admin_client):
    first = HelpTopicFactory(name="First", sort_order=101)
    second = HelpTopicFactory(name="Second", sort_order=102)
    third = HelpTopicFactory(name="Third", sort_order=103)
    admin_client.post(reverse("staff_admin:topic_move", args=[third.pk]), {"direction": "up"})
    names = list(
        HelpTopic.objects.filter(pk__in=[first.pk, second.pk, third.pk]).values_list(
            "name", flat=True
        )
    )
    assert names == ["First", "Third", "Second"]
    admin_client.post(reverse("staff_admin:topic_move", args=[first.pk]), {"direction": "down"})
    names = list(
        HelpTopic.objects.filter(pk__in=[first.pk, second.pk, third.pk]).values_list(
            "name", flat=True
        )
    )
    assert names == ["Third", "First", "Second"]


def test_a_team_lead_is_always_a_member(admin_client, department):
    lead = AgentFactory(department=department)
    member = AgentFactory(department=department)
    response = admin_client.post(
        reverse("staff_admin:team_create"),
        {"name": "Night shift", "lead": lead.pk, "members": [member.pk]},
    )
    assert response.status_code == 302
    team = Team.objects.get(name="Night shift")
    assert set(team.members.all()) == {lead, member}
    entry = AdminLogEntry.objects.get(object_type="routing.team")
    assert entry.changes["members"] == [None, sorted([str(lead), str(member)])]


def test_team_members_change_and_the_log_shows_before_and_after(admin_client, department):
    old = AgentFactory(department=department, user__name="Old Member")
    new = AgentFactory(department=department, user__name="New Member")
    team = TeamFactory(name="Day shift")
    team.members.set([old])
    admin_client.post(
        reverse("staff_admin:team_edit", args=[team.pk]),
        {"name": "Day shift", "members": [new.pk]},
    )
    assert list(team.members.all()) == [new]
    entry = AdminLogEntry.objects.get(action="update")
    assert entry.changes == {"members": [[str(old)], [str(new)]]}


def test_the_cti_page_shows_the_three_levels(admin_client, django_assert_max_num_queries):
    cti("Hardware", "Laptop", "Battery")
    cti("Hardware", "Laptop", "Screen")
    cti("Software", "Mail", "Spam")
    with django_assert_max_num_queries(12):
        page = admin_client.get(reverse("staff_admin:cti")).content.decode()
    for name in ("Hardware", "Laptop", "Battery", "Screen", "Software", "Mail", "Spam"):
        assert name in page


def test_an_admin_adds_cti_levels(admin_client):
    admin_client.post(reverse("staff_admin:category_create"), {"name": "Network"})
    category = Category.objects.get(name="Network")
    form = admin_client.get(reverse("staff_admin:ctitype_create") + f"?category={category.pk}")
    assert f'<option value="{category.pk}" selected>' in form.content.decode()
    response = admin_client.post(
        reverse("staff_admin:ctitype_create"), {"category": category.pk, "name": "VPN"}
    )
    assert response["Location"] == reverse("staff_admin:cti")
    vpn = CtiType.objects.get(name="VPN")
    admin_client.post(reverse("staff_admin:ctiitem_create"), {"type": vpn.pk, "name": "Drops"})
    assert CtiItem.objects.get(name="Drops").full_name == "Network / VPN / Drops"


def test_deleting_a_cti_level_tickets_use_is_refused(admin_client, department):
    item = cti("Hardware", "Laptop", "Battery")
    open_ticket(department=department, cti_item=item)
    for name, obj in (
        ("ctiitem", item),
        ("ctitype", item.type),
        ("category", item.type.category),
    ):
        response = admin_client.post(
            reverse(f"staff_admin:{name}_delete", args=[obj.pk]), follow=True
        )
        [message] = _messages(response)
        assert "is used by 1 ticket(s) and cannot be deleted; archive it instead." in message
    assert CtiItem.objects.filter(pk=item.pk).exists()
    admin_client.post(reverse("staff_admin:ctiitem_archive", args=[item.pk]))
    item.refresh_from_db()
    assert not item.is_active


def test_an_unused_cti_level_is_deleted(admin_client):
    category = CategoryFactory(name="Unused")
    admin_client.post(reverse("staff_admin:category_delete", args=[category.pk]))
    assert not Category.objects.filter(pk=category.pk).exists()


def test_a_ban_is_normalised_and_remembers_who_made_it(admin_client, admin):
    response = admin_client.post(
        reverse("staff_admin:banned_create"), {"address": " *@Spam.Example ", "reason": "spam"}
    )
    assert response.status_code == 302
    ban = BannedAddress.objects.get()
    assert ban.address == "spam.example"
    assert ban.created_by == admin


def test_an_invalid_ban_is_refused(admin_client):
    response = admin_client.post(
        reverse("staff_admin:banned_create"), {"address": "not an address"}
    )
    assert "Enter an email address or a domain such as example.com." in response.content.decode()
    assert not BannedAddress.objects.exists()


def test_bans_are_searched_and_deleted(admin_client):
    BannedAddressFactory(address="one@spam.example")
    two = BannedAddressFactory(address="two@junk.example")
    page = admin_client.get(reverse("staff_admin:banned_list") + "?q=junk").content.decode()
    assert "two@junk.example" in page
    assert "one@spam.example" not in page
    admin_client.post(reverse("staff_admin:banned_delete", args=[two.pk]))
    assert list(BannedAddress.objects.values_list("address", flat=True)) == ["one@spam.example"]


def test_a_department_manager_is_an_agent(admin_client, department, customer):
    agent_user(department=department)
    response = admin_client.post(
        reverse("staff_admin:department_create"),
        {"name": "Legal", "manager": 999999, "auto_assign": "none"},
    )
    assert "Select a valid choice." in response.content.decode()


def test_an_admin_edits_a_topic_a_ban_and_a_cti_level(admin_client, department):
    topic = HelpTopicFactory(name="Old topic")
    admin_client.post(
        reverse("staff_admin:topic_edit", args=[topic.pk]),
        {"name": "New topic", "department": department.pk},
    )
    topic.refresh_from_db()
    assert (topic.name, topic.department, topic.is_public) == ("New topic", department, False)

    ban = BannedAddressFactory(address="old@spam.example")
    admin_client.post(
        reverse("staff_admin:banned_edit", args=[ban.pk]),
        {"address": "New@Spam.example", "reason": "still spam"},
    )
    ban.refresh_from_db()
    assert (ban.address, ban.reason) == ("new@spam.example", "still spam")

    category = CategoryFactory(name="Hardwear")
    admin_client.post(
        reverse("staff_admin:category_edit", args=[category.pk]), {"name": "Hardware"}
    )
    category.refresh_from_db()
    assert category.name == "Hardware"
    assert AdminLogEntry.objects.filter(action="update").count() == 3


def test_editing_an_unknown_object_is_404(admin_client):
    assert (
        admin_client.get(reverse("staff_admin:department_edit", args=[999999])).status_code == 404
    )
