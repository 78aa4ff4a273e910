"""The admin log: what is recorded, masked secrets, and the log screen."""

import pytest
from django import forms
from django.test import Client
from django.urls import reverse

from helpdesk.adminlog import MASK, admin_log_record, form_changes
from helpdesk.models import AdminLogEntry
from routing.models import Department
from tests.accounts.factories import agent_user, role
from tests.routing.factories import DepartmentFactory
from tests.tickets.factories import priority

pytestmark = pytest.mark.django_db


def test_a_department_edit_records_who_and_before_and_after(admin_client, admin, department):
    admin_client.post(
        reverse("staff_admin:department_edit", args=[department.pk]),
        {
            "name": "Front desk",
            "default_priority": priority("High").pk,
            "auto_assign": "least_open",
            "is_public": "on",
            "auto_response": "on",
            "assign_members_only": "on",
        },
    )
    entry = AdminLogEntry.objects.get()
    assert (entry.actor, entry.action) == (admin, "update")
    assert entry.object_type == "routing.department"
    assert entry.object_id == str(department.pk)
    assert entry.object_repr == "Front desk"
    assert entry.changes == {
        "name": ["Helpdesk", "Front desk"],
        "default_priority": [None, "High"],
        "auto_assign": ["None", "Fewest open tickets"],
    }


def test_saving_without_changes_records_nothing(admin_client, department):
    admin_client.post(
        reverse("staff_admin:department_edit", args=[department.pk]),
        {
            "name": "Helpdesk",
            "auto_assign": "none",
            "is_public": "on",
            "auto_response": "on",
            "assign_members_only": "on",
        },
    )
    assert not AdminLogEntry.objects.exists()


class _SecretForm(forms.ModelForm):
    password = forms.CharField(widget=forms.PasswordInput, required=False)
    api_secret = forms.CharField(required=False)

    class Meta:
        model = Department
        fields = ["name"]


def test_secrets_are_masked():
    department = DepartmentFactory(name="Ops")
    form = _SecretForm(
        {"name": "Ops", "password": "hunter2", "api_secret": "s3cr3t"}, instance=department
    )
    assert form.is_valid()
    changes = form_changes(form)
    assert changes == {"password": [MASK, MASK], "api_secret": [MASK, MASK]}
    assert "hunter2" not in str(changes) and "s3cr3t" not in str(changes)


def test_an_entry_survives_its_object(admin):
    department = DepartmentFactory(name="Gone")
    entry = admin_log_record(actor=admin, obj=department, action="update", changes={"x": [1, 2]})
    department.delete()
    entry.refresh_from_db()
    assert (entry.object_repr, entry.changes) == ("Gone", {"x": [1, 2]})


def test_an_unknown_action_is_refused(admin):
    with pytest.raises(ValueError):
        admin_log_record(actor=admin, obj=DepartmentFactory(), action="explode")


def test_the_log_screen_filters_by_type_and_by_who(admin_client, admin, department):
    other_admin = agent_user(
        department=department, role=role("Administrator"), user__name="Otto Other"
    )
    admin_log_record(actor=admin, obj=DepartmentFactory(name="Dept by Ada"), action="create")
    admin_log_record(actor=other_admin, obj=DepartmentFactory(name="Dept by Otto"), action="create")
    admin_log_record(actor=admin, obj=role("Limited Access"), action="update")
    url = reverse("staff_admin:log")

    page = admin_client.get(url).content.decode()
    assert "Dept by Ada" in page and "Dept by Otto" in page and "Limited Access" in page

    page = admin_client.get(url, {"object_type": "routing.department"}).content.decode()
    assert "Dept by Ada" in page and "Dept by Otto" in page and "Limited Access" not in page

    page = admin_client.get(url, {"actor": other_admin.pk}).content.decode()
    assert "Dept by Otto" in page and "Dept by Ada" not in page


def test_the_log_is_paginated_and_keeps_the_filter(
    admin_client, admin, django_assert_max_num_queries
):
    for n in range(60):
        admin_log_record(actor=admin, obj=DepartmentFactory(name=f"D{n:02}"), action="create")
    with django_assert_max_num_queries(12):
        response = admin_client.get(
            reverse("staff_admin:log"), {"object_type": "routing.department"}
        )
    page = response.content.decode()
    assert "D59" in page and "D00" not in page  # newest first
    assert "object_type=routing.department&amp;page=2" in page
    second = admin_client.get(
        reverse("staff_admin:log"), {"object_type": "routing.department", "page": 2}
    ).content.decode()
    assert "D00" in second


def test_log_values_are_escaped(admin_client, admin):
    admin_log_record(
        actor=admin,
        obj=DepartmentFactory(name="<script>x()</script>"),
        action="update",
        changes={"name": ["<b>old</b>", "<img src=x onerror=alert(1)>"]},
    )
    page = admin_client.get(reverse("staff_admin:log")).content.decode()
    assert "<script>x()" not in page and "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_only_settings_admins_see_the_log(department):
    client = Client()
    client.force_login(agent_user(department=department))
    assert client.get(reverse("staff_admin:log")).status_code == 403


def test_the_log_names_object_types_in_words(admin_client, admin):
    admin_log_record(actor=admin, obj=DepartmentFactory(name="Words"), action="create")
    page = admin_client.get(reverse("staff_admin:log")).content.decode()
    assert "Department" in page
    assert "routing.department</span>" not in page
