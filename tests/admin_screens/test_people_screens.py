"""Agents (invite, set password, edit, extended access, teams, vacation) and roles."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Agent, AgentDepartmentAccess, Role, User
from helpdesk.models import AdminLogEntry
from tests.accounts.factories import AgentFactory, UserFactory, agent_user, role
from tests.routing.factories import DepartmentFactory, TeamFactory

pytestmark = pytest.mark.django_db


def _invite(client, department, **data):
    return client.post(
        reverse("staff_admin:agent_create"),
        {
            "email": "New.Agent@Staff.example",
            "name": "Nina New",
            "department": department.pk,
            "role": role("All Access").pk,
            **data,
        },
    )


def test_an_invited_agent_sets_a_password_and_signs_in(
    admin_client, department, mailoutbox, django_capture_on_commit_callbacks
):
    team = TeamFactory(name="Tier 2")
    with django_capture_on_commit_callbacks(execute=True):
        response = _invite(admin_client, department, teams=[team.pk])
    assert response.status_code == 302
    agent = Agent.objects.get(user__email="new.agent@staff.example")
    assert agent.department == department
    assert list(agent.teams.all()) == [team]
    assert not agent.user.has_usable_password()
    [mail] = mailoutbox
    assert mail.to == ["new.agent@staff.example"]
    link = re.search(r"https?://\S+", mail.body).group(0)
    path = link.split("testserver", 1)[1]

    client = Client()
    form = client.get(path, follow=True)
    assert form.status_code == 200
    set_url = form.redirect_chain[-1][0] if form.redirect_chain else path
    done = client.post(
        set_url,
        {"new_password1": "a-Long-s3cret-phrase", "new_password2": "a-Long-s3cret-phrase"},
        follow=True,
    )
    assert "Your password is set. Sign in with it." in done.content.decode()
    assert client.login(email="new.agent@staff.example", password="a-Long-s3cret-phrase")
    # The link works once.
    client.logout()
    again = client.get(path, follow=True)
    assert "This link has expired or was already used." in again.content.decode()


def test_inviting_an_existing_agent_is_refused(admin_client, department, agent):
    response = _invite(admin_client, department, email=agent.email)
    assert "This person is already an agent." in response.content.decode()


def test_a_customer_invited_becomes_an_agent_and_keeps_their_password(
    admin_client, department, customer
):
    _invite(admin_client, department, email=customer.email)
    customer.refresh_from_db()
    assert customer.agent.department == department
    assert customer.check_password("pw-carol-123")


def test_the_invitation_is_logged(admin_client, department, admin):
    _invite(admin_client, department)
    entry = AdminLogEntry.objects.get(object_type="accounts.agent")
    assert entry.action == "create"
    assert entry.actor == admin
    assert entry.changes["email"] == [None, "new.agent@staff.example"]
    assert entry.changes["role"] == [None, "All Access"]


def _edit_data(agent, **data):
    values = {
        "name": agent.user.name,
        "department": agent.department_id,
        "role": agent.role_id,
        "is_active": "on",
        "access-TOTAL_FORMS": "0",
        "access-INITIAL_FORMS": "0",
        "access-MIN_NUM_FORMS": "0",
        "access-MAX_NUM_FORMS": "1000",
    }
    values.update(data)
    return {k: v for k, v in values.items() if v is not None}


def test_an_admin_edits_an_agent_and_the_log_shows_before_and_after(admin_client, department):
    sales = DepartmentFactory(name="Sales")
    agent = AgentFactory(department=department, user__name="Sam Smith")
    response = admin_client.post(
        reverse("staff_admin:agent_edit", args=[agent.pk]),
        _edit_data(
            agent,
            name="Sam Smythe",
            on_vacation="on",
            **{
                "access-TOTAL_FORMS": "1",
                "access-0-department": sales.pk,
                "access-0-role": role("Limited Access").pk,
            },
        ),
    )
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.on_vacation
    assert agent.user.name == "Sam Smythe"
    access = AgentDepartmentAccess.objects.get(agent=agent)
    assert (access.department, access.role.name) == (sales, "Limited Access")
    entry = AdminLogEntry.objects.get(action="update")
    assert entry.changes["on_vacation"] == [False, True]
    assert entry.changes["name"] == ["Sam Smith", "Sam Smythe"]
    assert entry.changes["extended access"] == [[], ["Sales (Limited Access)"]]


def test_extended_access_cannot_repeat_the_primary_department(admin_client, department):
    agent = AgentFactory(department=department)
    response = admin_client.post(
        reverse("staff_admin:agent_edit", args=[agent.pk]),
        _edit_data(
            agent,
            **{
                "access-TOTAL_FORMS": "1",
                "access-0-department": department.pk,
                "access-0-role": role("Limited Access").pk,
            },
        ),
    )
    assert "This is the primary department; its role is above." in response.content.decode()
    assert not AgentDepartmentAccess.objects.exists()


def test_an_admin_cannot_deactivate_themselves(admin_client, admin):
    response = admin_client.post(
        reverse("staff_admin:agent_edit", args=[admin.agent.pk]),
        _edit_data(admin.agent, is_active=None),
    )
    assert "You cannot deactivate yourself." in response.content.decode()
    admin.agent.refresh_from_db()
    assert admin.agent.is_active


def test_a_deactivated_agent_loses_the_staff_pages(admin_client, department):
    agent = AgentFactory(department=department, role=role("Administrator"))
    client = Client()
    client.force_login(agent.user)
    assert client.get(reverse("staff_admin:index")).status_code == 200
    admin_client.post(
        reverse("staff_admin:agent_edit", args=[agent.pk]), _edit_data(agent, is_active=None)
    )
    assert client.get(reverse("staff_admin:index")).status_code == 302


def test_the_agent_list_runs_a_fixed_number_of_queries(
    admin_client, department, django_assert_max_num_queries
):
    def load() -> int:
        with django_assert_max_num_queries(12) as captured:
            response = admin_client.get(reverse("staff_admin:agent_list"))
        assert response.status_code == 200
        return len(captured.captured_queries)

    load()  # the first page of a test also reads the (then cached) help desk settings
    few = load()
    team = TeamFactory()
    for _n in range(12):
        AgentFactory(department=DepartmentFactory(), teams=[team, TeamFactory()])
    assert load() == few


def test_agents_are_searched_and_names_escaped(admin_client, department):
    agent_user(department=department, user__name="<b>Bold</b> Bob", user__email="bob@staff.example")
    agent_user(department=department, user__name="Alice", user__email="alice@staff.example")
    page = admin_client.get(reverse("staff_admin:agent_list") + "?q=bob").content.decode()
    assert "&lt;b&gt;Bold&lt;/b&gt; Bob" in page
    assert "<b>Bold</b>" not in page
    assert "alice@staff.example" not in page


def test_a_role_is_made_from_the_permission_matrix(admin_client):
    page = admin_client.get(reverse("staff_admin:role_create")).content.decode()
    assert "Administration" in page and "ticket.reply" in page
    admin_client.post(
        reverse("staff_admin:role_create"),
        {"name": "Triage", "permissions": ["ticket.assign", "ticket.reply", "admin.routing"]},
    )
    triage = Role.objects.get(name="Triage")
    assert triage.permissions == ["ticket.assign", "ticket.reply", "admin.routing"]


def test_an_unknown_permission_is_refused(admin_client):
    response = admin_client.post(
        reverse("staff_admin:role_create"), {"name": "Bad", "permissions": ["root.everything"]}
    )
    assert "Select a valid choice." in response.content.decode()
    assert not Role.objects.filter(name="Bad").exists()


def test_a_role_change_is_logged_and_takes_effect(admin_client, department):
    helper = Role.objects.create(name="Helper", permissions=["ticket.reply"])
    agent = agent_user(department=department, role=helper)
    client = Client()
    client.force_login(agent)
    assert client.get(reverse("staff_admin:department_list")).status_code == 403
    admin_client.post(
        reverse("staff_admin:role_edit", args=[helper.pk]),
        {"name": "Helper", "permissions": ["ticket.reply", "admin.routing"]},
    )
    assert client.get(reverse("staff_admin:department_list")).status_code == 200
    entry = AdminLogEntry.objects.get(object_type="accounts.role")
    assert entry.changes == {"permissions": [["ticket.reply"], ["admin.routing", "ticket.reply"]]}


def test_an_admin_cannot_take_staff_administration_from_their_own_role(admin_client):
    administrator = role("Administrator")
    keep = [p for p in administrator.permissions if p != "admin.staff"]
    response = admin_client.post(
        reverse("staff_admin:role_edit", args=[administrator.pk]),
        {"name": "Administrator", "permissions": keep},
    )
    assert "Your own role keeps" in response.content.decode()
    administrator.refresh_from_db()
    assert "admin.staff" in administrator.permissions


def test_deleting_a_role_in_use_is_refused(admin_client):
    response = admin_client.post(
        reverse("staff_admin:role_delete", args=[role("Administrator").pk]), follow=True
    )
    [message] = [str(m) for m in response.context["messages"]]
    assert message.startswith("Administrator cannot be deleted: it is used by 1 agents")
    unused = Role.objects.create(name="Unused")
    admin_client.post(reverse("staff_admin:role_delete", args=[unused.pk]))
    assert not Role.objects.filter(name="Unused").exists()


def test_a_resent_invitation_is_refused_once_a_password_is_set(
    admin_client, department, mailoutbox
):
    agent = AgentFactory(department=department, user=UserFactory(password="set-already-123"))
    response = admin_client.post(
        reverse("staff_admin:agent_reinvite", args=[agent.pk]), follow=True
    )
    assert "has set a password already" in response.content.decode()
    assert mailoutbox == []
    invited = AgentFactory(department=department)
    admin_client.post(reverse("staff_admin:agent_reinvite", args=[invited.pk]))
    assert [m.to for m in mailoutbox] == [[invited.user.email]]


def test_users_without_an_agent_profile_are_not_listed(admin_client, customer):
    page = admin_client.get(reverse("staff_admin:agent_list")).content.decode()
    assert customer.email not in page
    assert User.objects.filter(email=customer.email).exists()


def test_an_admin_cannot_give_themselves_a_role_without_staff_administration(admin_client, admin):
    response = admin_client.post(
        reverse("staff_admin:agent_edit", args=[admin.agent.pk]),
        _edit_data(admin.agent, role=role("All Access").pk),
    )
    assert "Your own role keeps" in response.content.decode()
    admin.agent.refresh_from_db()
    assert admin.agent.role.name == "Administrator"
