"""The settings screen and `helpdesk.config.config()`."""

import pytest
from django.urls import reverse

from helpdesk.config import MB, config
from helpdesk.models import AdminLogEntry, HelpdeskSettings
from tests.routing.factories import HelpTopicFactory
from tests.tickets.factories import priority

pytestmark = pytest.mark.django_db


def _settings(**data):
    values = {
        "helpdesk_name": "Acme Support",
        "ticket_number_format": "TX-######",
        "claim_on_reply": "on",
        "customers_can_close": "on",
        "collaborator_visibility": "thread",
        "max_attachment_size": "5",
        "allowed_attachment_types": ".pdf, image/*\ntext/plain",
    }
    values.update(data)
    return {k: v for k, v in values.items() if v is not None}


def test_without_saved_settings_the_environment_applies(settings):
    settings.HELPDESK_TITLE = "Env Desk"
    settings.HELPDESK_CUSTOMERS_CAN_CLOSE = False
    settings.HELPDESK_MAX_ATTACHMENT_SIZE = 3 * MB
    current = config()
    assert (current.helpdesk_name, current.customers_can_close) == ("Env Desk", False)
    assert current.max_attachment_size == 3 * MB
    assert not current.is_saved


def test_without_a_list_of_their_own_the_servers_attachment_types_apply(
    admin_client, settings, django_capture_on_commit_callbacks
):
    settings.HELPDESK_ATTACHMENT_TYPES = [".pdf", "text/plain"]
    assert config().allowed_attachment_types == (".pdf", "text/plain")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("staff_admin:settings"), _settings(allowed_attachment_types=""))
    current = config()
    assert current.is_saved
    assert current.attachment_type_allowed("a.pdf", "application/pdf")
    assert not current.attachment_type_allowed("page.html", "text/html")


def test_the_form_starts_from_the_environment(admin_client, settings):
    settings.HELPDESK_TITLE = "Env Desk"
    settings.HELPDESK_MAX_ATTACHMENT_SIZE = 10 * MB
    form = admin_client.get(reverse("staff_admin:settings")).context["form"]
    assert form.initial["helpdesk_name"] == "Env Desk"
    assert form.initial["max_attachment_size"] == 10


def test_an_admin_saves_the_settings_and_config_reads_them(
    admin_client, department, django_capture_on_commit_callbacks
):
    topic = HelpTopicFactory(name="Billing")
    assert not config().is_saved  # cached: no row yet
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("staff_admin:settings"),
            _settings(
                default_department=department.pk,
                default_priority=priority("High").pk,
                default_help_topic=topic.pk,
                customers_can_close=None,
                require_help_topic_to_close="on",
            ),
            follow=True,
        )
    assert "The settings were saved." in response.content.decode()
    current = config()
    assert current.is_saved
    assert current.helpdesk_name == "Acme Support"
    assert current.default_department == department
    assert current.default_priority.name == "High"
    assert current.default_help_topic == topic
    assert current.customers_can_close is False
    assert current.require_help_topic_to_close is True
    assert current.max_attachment_size == 5 * MB
    assert current.allowed_attachment_types == (".pdf", "image/*", "text/plain")
    assert current.attachment_type_allowed("scan.PDF", "application/octet-stream")
    assert current.attachment_type_allowed("photo.heic", "image/heic")
    assert not current.attachment_type_allowed("run.exe", "application/x-msdownload")
    assert HelpdeskSettings.objects.count() == 1


def test_saving_again_updates_the_one_row_and_logs_the_change(
    admin_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("staff_admin:settings"), _settings())
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("staff_admin:settings"),
            _settings(helpdesk_name="Acme Help", claim_on_reply=None),
        )
    assert HelpdeskSettings.objects.count() == 1
    assert config().helpdesk_name == "Acme Help"
    entry = AdminLogEntry.objects.filter(object_type="helpdesk.helpdesksettings").first()
    assert entry.action == "update"
    assert entry.changes == {
        "helpdesk_name": ["Acme Support", "Acme Help"],
        "claim_on_reply": [True, False],
    }


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("ticket_number_format", "TX ###", "Use letters, digits, hyphens and at least one #"),
        ("ticket_number_format", "ABC", "Use letters, digits, hyphens and at least one #"),
        ("ticket_number_format", "A" * 30 + "##", "Numbers of this format would be too long."),
        ("allowed_attachment_types", "pdf", "Not an extension or MIME type: pdf"),
        ("max_attachment_size", "0", "Ensure this value is greater than or equal to 1."),
    ],
)
def test_bad_settings_are_refused(admin_client, field, value, error):
    response = admin_client.post(reverse("staff_admin:settings"), _settings(**{field: value}))
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not HelpdeskSettings.objects.exists()


def _save(client, capture, **data):
    with capture(execute=True):
        response = client.post(reverse("staff_admin:settings"), _settings(**data))
    assert response.status_code == 302


def test_customers_may_close_their_tickets_only_when_the_settings_allow_it(
    admin_client, department, django_capture_on_commit_callbacks
):
    from accounts.permissions import can
    from tests.tickets.factories import open_ticket

    ticket = open_ticket(department=department)
    owner = ticket.user
    assert can(owner, "ticket.close", ticket)
    _save(admin_client, django_capture_on_commit_callbacks, customers_can_close=None)
    assert not can(owner, "ticket.close", ticket)


def test_tickets_nothing_routes_go_to_the_default_department(
    admin_client, department, django_capture_on_commit_callbacks
):
    from tests.routing.factories import DepartmentFactory
    from tests.tickets.factories import open_ticket

    support = DepartmentFactory(name="Escalations")
    _save(admin_client, django_capture_on_commit_callbacks, default_department=support.pk)
    assert open_ticket().department == support
    support.is_active = False
    support.save(update_fields=["is_active"])
    assert open_ticket().department != support  # an archived default is passed over
