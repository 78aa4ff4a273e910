"""osTicket's API: the example requests and negative cases of its documentation, as its
clients send them (X-API-Key header, plain-text answers)."""

import json
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from django.test import Client

from accounts.api_keys import api_key_create, api_key_revoke
from mailgate.models import InboundMessage, Mailbox
from routing.models import BannedAddress
from tests.routing.factories import DepartmentFactory, FilterFactory, HelpTopicFactory
from tickets.models import BodyFormat, EntryKind, EventAction, Priority, Source, Ticket

pytestmark = pytest.mark.django_db

EXAMPLE_JSON = {
    "alert": True,
    "autorespond": True,
    "source": "API",
    "name": "Angry User",
    "email": "api@example.com",
    "phone": "3185558634X123",
    "subject": "Testing API",
    "ip": "123.211.233.122",
    "message": "data:text/html;charset=utf-8,MESSAGE <b>HERE</b>",
    "topicId": 1,
    "priority": 2,
    "attachments": [
        {"file.txt": "data:text/plain;charset=utf-8,content"},
        {"image.gif": "data:image/gif;base64,R0lGODlhAQABAAAAACw="},
    ],
}

EXAMPLE_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<ticket alert="false" autorespond="false" source="API">
  <name>Angry User</name><email>api@example.com</email>
  <subject>Testing API</subject><phone>318-555-8634X123</phone>
  <message type="text/plain"><![CDATA[Message content here]]></message>
  <attachments>
    <file name="file.txt" type="text/plain"><![CDATA[File content]]></file>
    <file name="a.gif" type="image/gif" encoding="base64">R0lGODlhAQABAAAAACw=</file>
  </attachments>
  <ip>123.211.233.122</ip>
</ticket>
"""


def post(path, body, key=None, **extra):
    if key is not None:
        extra["HTTP_X_API_KEY"] = key
    data = json.dumps(body) if isinstance(body, dict) else body
    return Client().post(path, data=data, content_type="application/json", **extra)


def text(response) -> str:
    return response.content.decode()


def test_the_documented_json_example_opens_a_ticket(osticket_key, mailoutbox):
    response = post("/api/tickets.json", EXAMPLE_JSON, osticket_key.key)

    assert response.status_code == 201
    assert response["Content-Type"] == "text/html; charset=UTF-8"
    ticket = Ticket.objects.get(number=text(response))
    assert ticket.subject == "Testing API"
    assert ticket.source == Source.API
    assert ticket.user.email == "api@example.com" and ticket.user.name == "Angry User"
    assert ticket.user.phone == "3185558634X123"
    assert ticket.ip_address == "123.211.233.122"  # the address the client named
    entry = ticket.thread.entries.get()
    assert entry.body_format == BodyFormat.HTML and entry.body == "MESSAGE <b>HERE</b>"
    # The truncated GIF of the example is no image: it is left out, the request still works.
    assert [a.name for a in entry.attachments.all()] == ["file.txt"]
    assert entry.attachments.get().file.read() == b"content"


def test_the_documented_xml_example_opens_a_ticket_without_alert_or_autoresponse(
    osticket_key, django_capture_on_commit_callbacks, mailoutbox
):
    with django_capture_on_commit_callbacks(execute=True):
        response = Client().post(
            "/api/tickets.xml",
            data=EXAMPLE_XML,
            content_type="application/xml",
            HTTP_X_API_KEY=osticket_key.key,
        )

    assert response.status_code == 201, text(response)
    ticket = Ticket.objects.get(number=text(response))
    entry = ticket.thread.entries.get()
    assert entry.body == "Message content here" and entry.body_format == BodyFormat.TEXT
    assert [a.name for a in entry.attachments.all()] == ["file.txt"]
    created = ticket.thread.events.get(action=EventAction.CREATED)
    assert created.data["auto_respond"] is False and created.data["alert"] is False
    assert mailoutbox == []  # no auto-response to the customer, no alert to agents


def test_autorespond_true_mails_the_customer(
    osticket_key, django_capture_on_commit_callbacks, mailoutbox
):
    body = {**EXAMPLE_JSON, "attachments": []}
    with django_capture_on_commit_callbacks(execute=True):
        response = post("/api/tickets.json", body, osticket_key.key)
    assert response.status_code == 201
    assert [m.to for m in mailoutbox] == [["Angry User <api@example.com>"]]


def test_the_content_type_header_is_never_looked_at(osticket_key):
    response = Client().post(
        "/api/tickets.json",
        data=json.dumps(EXAMPLE_JSON),
        content_type="text/plain",
        HTTP_X_API_KEY=osticket_key.key,
    )
    assert response.status_code == 201


def test_the_paths_work_through_the_front_controller_too(osticket_key):
    response = post("/api/http.php/tickets.json", EXAMPLE_JSON, osticket_key.key)
    assert response.status_code == 201


def test_priority_id_and_help_topic_are_honoured(osticket_key):
    topic = HelpTopicFactory(name="Billing", department=DepartmentFactory(name="Accounts"))
    high = Priority.objects.get(name="High")
    body = {**EXAMPLE_JSON, "topicId": topic.pk, "priority": 999, "priorityId": high.pk}
    response = post("/api/tickets.json", body, osticket_key.key)
    ticket = Ticket.objects.get(number=text(response))
    assert ticket.help_topic == topic and ticket.department.name == "Accounts"
    assert ticket.priority == high


def test_a_data_url_without_charset_keeps_utf8_text_and_base64_is_decoded(osticket_key):
    body = {**EXAMPLE_JSON, "message": "data:text/plain;base64,R3LDvMOfZQ=="}
    response = post("/api/tickets.json", body, osticket_key.key)
    entry = Ticket.objects.get(number=text(response)).thread.entries.get()
    assert entry.body == "Grüße" and entry.body_format == BodyFormat.TEXT


def test_a_plain_message_is_plain_text(osticket_key):
    body = {**EXAMPLE_JSON, "message": "Just <b>text</b>", "attachments": []}
    response = post("/api/tickets.json", body, osticket_key.key)
    entry = Ticket.objects.get(number=text(response)).thread.entries.get()
    assert entry.body_format == BodyFormat.TEXT and entry.body == "Just <b>text</b>"


def test_an_unknown_field_is_accepted(osticket_key):
    response = post(
        "/api/tickets.json", {**EXAMPLE_JSON, "favourite_colour": "blue"}, osticket_key.key
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({}, 400, "No errors"),
        (b"{", 400, "Syntax error, malformed JSON"),
    ],
)
def test_malformed_bodies_get_osticket_answers(osticket_key, body, status, message):
    response = post("/api/tickets.json", body, osticket_key.key)
    assert (response.status_code, text(response)) == (status, message)


def test_missing_subject_is_a_validation_error_naming_the_field(osticket_key):
    body = {key: value for key, value in EXAMPLE_JSON.items() if key != "subject"}
    response = post("/api/tickets.json", body, osticket_key.key)
    assert response.status_code == 400
    assert text(response).startswith("Unable to create new ticket: validation errors:")
    assert "subject:" in text(response)
    assert not Ticket.objects.exists()


@pytest.mark.parametrize("source", ["Phone", "Other", "Fax"])
def test_an_invalid_origin_is_refused(osticket_key, source):
    response = post("/api/tickets.json", {**EXAMPLE_JSON, "source": source}, osticket_key.key)
    assert response.status_code == 400 and "Invalid ticket origin given" in text(response)


def test_source_web_needs_a_help_topic(osticket_key):
    body = {**EXAMPLE_JSON, "source": "Web", "topicId": 0}
    response = post("/api/tickets.json", body, osticket_key.key)
    assert response.status_code == 400 and "topicId" in text(response)


def test_malformed_xml_names_the_position(osticket_key):
    response = Client().post(
        "/api/tickets.xml",
        data=b"<ticket><name>x</ticket>",
        content_type="application/xml",
        HTTP_X_API_KEY=osticket_key.key,
    )
    assert response.status_code == 400 and text(response).startswith("XML error: ")
    assert " at line 1:" in text(response)


def test_xml_entities_are_refused(osticket_key):
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaa">]><ticket><name>&a;</name></ticket>'
    )
    response = Client().post(
        "/api/tickets.xml",
        data=bomb,
        content_type="application/xml",
        HTTP_X_API_KEY=osticket_key.key,
    )
    assert response.status_code == 400 and not Ticket.objects.exists()


# --- keys -----------------------------------------------------------------------------------


def test_no_key_is_refused():
    response = post("/api/tickets.json", EXAMPLE_JSON)
    assert (response.status_code, text(response)) == (401, "Valid API key required")


def test_an_unknown_key_is_refused():
    response = post("/api/tickets.json", EXAMPLE_JSON, "BA00B76BAA30F62E1940B46CC1C3C73C")
    assert (response.status_code, text(response)) == (401, "Valid API key required")


def test_a_key_bound_to_another_address_is_refused():
    new = api_key_create(name="elsewhere", allowed_ips=["192.0.2.10"], can_create_tickets=True)
    response = post("/api/tickets.json", EXAMPLE_JSON, new.key)
    assert (response.status_code, text(response)) == (401, "Valid API key required")


def test_a_key_bound_to_the_clients_network_works():
    new = api_key_create(name="here", allowed_ips=["127.0.0.0/8"], can_create_tickets=True)
    assert post("/api/tickets.json", EXAMPLE_JSON, new.key).status_code == 201


def test_an_inactive_key_is_refused(osticket_key):
    api_key_revoke(api_key=osticket_key.api_key)
    response = post("/api/tickets.json", EXAMPLE_JSON, osticket_key.key)
    assert (response.status_code, text(response)) == (
        401,
        "API key not found/active or source IP not authorized",
    )


def test_a_key_that_may_not_create_tickets_is_refused():
    new = api_key_create(name="cron only", can_exec_cron=True)
    response = post("/api/tickets.json", EXAMPLE_JSON, new.key)
    assert (response.status_code, text(response)) == (401, "API key not authorized")


def test_wrong_method_or_path_is_not_supported(osticket_key):
    client = Client(HTTP_X_API_KEY=osticket_key.key)
    assert (client.get("/api/tickets.json").status_code, text(client.get("/api/tickets.json"))) == (
        400,
        "URL not supported",
    )
    assert text(client.post("/api/tickets.json/")) == "URL not supported"
    assert text(client.post("/api/Tickets.json")) == "URL not supported"


def test_the_method_override_parameter_is_honoured(osticket_key):
    response = Client().get("/api/tasks/cron?_method=POST", HTTP_X_API_KEY=osticket_key.key)
    assert (response.status_code, text(response)) == (200, "Completed")


# --- refusals -------------------------------------------------------------------------------


def test_a_banned_email_is_denied(osticket_key):
    BannedAddress.objects.create(address="api@example.com")
    response = post("/api/tickets.json", EXAMPLE_JSON, osticket_key.key)
    assert response.status_code == 403
    assert text(response) == (
        "Ticket denied: api@example.com\n\nThis help desk is for use by authorized users only"
    )
    assert not Ticket.objects.exists()


def test_a_rejecting_filter_is_a_403(osticket_key):
    FilterFactory(name="No tests", reject=True, rules=[("subject", "contains", "Testing")])
    response = post("/api/tickets.json", EXAMPLE_JSON, osticket_key.key)
    assert response.status_code == 403 and not Ticket.objects.exists()


def test_an_oversized_body_is_a_413(osticket_key, settings):
    settings.HELPDESK_API_MAX_BODY_SIZE = 1000
    body = {**EXAMPLE_JSON, "message": "x" * 2000}
    assert post("/api/tickets.json", body, osticket_key.key).status_code == 413


# --- cron -----------------------------------------------------------------------------------


def test_cron_completes_with_a_cron_key(osticket_key):
    response = Client().post("/api/tasks/cron", HTTP_X_API_KEY=osticket_key.key)
    assert (response.status_code, text(response)) == (200, "Completed")


def test_cron_needs_the_cron_flag():
    new = api_key_create(name="tickets only", can_create_tickets=True)
    response = Client().post("/api/tasks/cron", HTTP_X_API_KEY=new.key)
    assert (response.status_code, text(response)) == (401, "API key not authorized")


# --- tickets.email --------------------------------------------------------------------------


def raw_mail(*, sender="Wile E. <wile@acme.example>", subject="Rocket skates broken", **headers):
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "support@helpdesk.example"
    message["Subject"] = subject
    message["Message-ID"] = headers.pop("message_id", make_msgid(domain="acme.example"))
    for name, value in headers.items():
        message[name] = value
    message.set_content("They go left.")
    return message.as_bytes()


def post_mail(raw: bytes, key: str):
    return Client().post(
        "/api/tickets.email", data=raw, content_type="message/rfc822", HTTP_X_API_KEY=key
    )


def test_a_raw_email_goes_through_the_mail_pipeline(osticket_key):
    mailbox = Mailbox.objects.create(
        name="Support", email="support@helpdesk.example", department=DepartmentFactory(name="Mail")
    )
    raw = raw_mail()
    response = post_mail(raw, osticket_key.key)

    assert response.status_code == 201
    ticket = Ticket.objects.get(number=text(response))
    assert ticket.source == Source.EMAIL and ticket.department == mailbox.department
    assert InboundMessage.objects.get().ticket == ticket
    # The same message again: already processed, same number, no second ticket.
    again = post_mail(raw, osticket_key.key)
    assert (again.status_code, text(again)) == (201, ticket.number)
    assert Ticket.objects.count() == 1


def test_a_reply_by_email_answers_with_the_tickets_number(osticket_key):
    first = post_mail(raw_mail(), osticket_key.key)
    ticket = Ticket.objects.get(number=text(first))
    reply = post_mail(
        raw_mail(subject=f"Re: Rocket skates broken [#{ticket.number}]"), osticket_key.key
    )
    assert (reply.status_code, text(reply)) == (201, ticket.number)
    kinds = list(ticket.thread.entries.values_list("kind", flat=True))
    assert kinds == [EntryKind.MESSAGE, EntryKind.MESSAGE]


def test_a_banned_sender_by_email_is_denied(osticket_key):
    BannedAddress.objects.create(address="wile@acme.example")
    response = post_mail(raw_mail(), osticket_key.key)
    assert response.status_code == 403 and text(response).startswith(
        "Ticket denied: wile@acme.example"
    )


def test_an_auto_reply_is_consumed_without_a_ticket(osticket_key):
    response = post_mail(raw_mail(**{"Auto-Submitted": "auto-replied"}), osticket_key.key)
    assert (response.status_code, text(response)) == (201, "")
    assert not Ticket.objects.exists()


def test_email_needs_the_create_flag():
    new = api_key_create(name="cron only", can_exec_cron=True)
    response = post_mail(raw_mail(), new.key)
    assert (response.status_code, text(response)) == (401, "API key not authorized")


def test_cron_runs_the_due_jobs_once(osticket_key):
    from sla.models import JobRun

    Client().post("/api/tasks/cron", HTTP_X_API_KEY=osticket_key.key)
    started = dict(JobRun.objects.values_list("name", "started_at"))
    assert "mailboxes-fetch" in started and all(started.values())
    Client().post("/api/tasks/cron", HTTP_X_API_KEY=osticket_key.key)
    assert dict(JobRun.objects.values_list("name", "started_at")) == started  # none due yet


def test_odd_values_in_known_fields_do_not_break_the_request(osticket_key):
    body = {**EXAMPLE_JSON, "topicId": 10**25, "priority": "high", "attachments": 5}
    response = post("/api/tickets.json", body, osticket_key.key)
    assert response.status_code == 201
    assert Ticket.objects.get(number=text(response)).help_topic is None


def test_phone_and_notes_fill_a_new_customer_and_the_ip_defaults_to_the_client(osticket_key):
    body = {**EXAMPLE_JSON, "attachments": [], "phone": "318-555-8634x9", "notes": "VIP"}
    del body["ip"]
    response = post("/api/tickets.json", body, osticket_key.key)
    assert response.status_code == 201, text(response)
    ticket = Ticket.objects.get(number=text(response))
    assert ticket.user.phone == "318-555-8634X9"  # JSON upper-cases it, as osTicket does
    assert ticket.user.notes == "VIP"
    assert ticket.ip_address == "127.0.0.1"  # the test client's own address
    # A later ticket does not overwrite what the customer has.
    again = post("/api/tickets.json", {**body, "phone": "555", "notes": "other"}, osticket_key.key)
    customer = Ticket.objects.get(number=text(again)).user
    assert (customer.phone, customer.notes) == ("318-555-8634X9", "VIP")
