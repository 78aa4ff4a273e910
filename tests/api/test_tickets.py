"""REST API v1 tickets: what each role sees and may do, through the same rules as the UI."""

import base64
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.api_keys import api_key_create, api_key_revoke
from tests.accounts.factories import UserFactory, agent_user, role
from tests.api.conftest import key_client
from tests.routing.factories import DepartmentFactory, TeamFactory
from tests.tickets.factories import closed_status, open_ticket, priority
from tickets.models import Attachment, EntryKind, EventAction, Source, Ticket
from tickets.services import AttachmentUpload, ticket_note_add

pytestmark = pytest.mark.django_db


@pytest.fixture
def ticket(department):
    return open_ticket(department=department, subject="Printer on fire")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- authentication -------------------------------------------------------------------------


def test_no_key_is_401_with_a_message():
    response = APIClient().get("/api/v1/tickets/")
    assert response.status_code == 401
    assert response.json()["message"]


def test_a_bearer_key_works(agent, ticket):
    new = api_key_create(name="bearer", user=agent)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {new.key}")
    assert client.get(f"/api/v1/tickets/{ticket.pk}").status_code == 200


def test_an_expired_key_stops(agent):
    new = api_key_create(name="short", user=agent, expires_at=timezone.now() + timedelta(days=1))
    new.api_key.expires_at = timezone.now() - timedelta(seconds=1)
    new.api_key.save(update_fields=["expires_at"])
    client = APIClient(HTTP_X_API_KEY=new.key)
    response = client.get("/api/v1/tickets/")
    assert response.status_code == 401
    assert response.json()["message"] == "API key not found/active or source IP not authorized"


def test_a_revoked_key_or_deactivated_user_stops_at_once(agent_api):
    assert agent_api.get("/api/v1/tickets/").status_code == 200
    agent_api.user.is_active = False
    agent_api.user.save(update_fields=["is_active"])
    assert agent_api.get("/api/v1/tickets/").status_code == 401


def test_revocation_stops_the_key(agent):
    new = api_key_create(name="soon revoked", user=agent)
    client = APIClient(HTTP_X_API_KEY=new.key)
    assert client.get("/api/v1/tickets/").status_code == 200
    api_key_revoke(api_key=new.api_key)
    assert client.get("/api/v1/tickets/").status_code == 401


def test_a_key_records_when_and_where_it_was_used(agent_api):
    agent_api.get("/api/v1/tickets/")
    key = agent_api.user.api_keys.get()
    assert key.last_used_at is not None and key.last_used_ip == "127.0.0.1"


def test_the_staff_session_works_and_needs_csrf(agent, ticket):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(agent)
    assert client.get(f"/api/v1/tickets/{ticket.pk}").status_code == 200
    response = client.post(f"/api/v1/tickets/{ticket.pk}/notes", {"body": "x"}, format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["message"]


# --- reading --------------------------------------------------------------------------------


def test_an_agent_lists_the_tickets_of_their_departments_only(agent_api, ticket):
    elsewhere = open_ticket(department=DepartmentFactory(name="Elsewhere"))
    response = agent_api.get("/api/v1/tickets/")
    assert response.status_code == 200
    assert [row["number"] for row in response.json()["results"]] == [ticket.number]
    assert agent_api.get(f"/api/v1/tickets/{elsewhere.pk}").status_code == 404
    assert agent_api.get(f"/api/v1/tickets/by-number/{elsewhere.number}").status_code == 404


def test_fetch_by_id_and_by_number(agent_api, ticket):
    by_id = agent_api.get(f"/api/v1/tickets/{ticket.pk}").json()
    by_number = agent_api.get(f"/api/v1/tickets/by-number/{ticket.number}").json()
    assert by_id == by_number
    assert by_id["subject"] == "Printer on fire" and by_id["status"]["state"] == "open"
    assert agent_api.get("/api/v1/tickets/999999").status_code == 404


def test_a_customer_key_sees_only_their_own_tickets(customer_api, department):
    mine = open_ticket(user=customer_api.user, department=department)
    other = open_ticket(department=department)
    numbers = [row["number"] for row in customer_api.get("/api/v1/tickets/").json()["results"]]
    assert numbers == [mine.number]
    assert customer_api.get(f"/api/v1/tickets/{other.pk}").status_code == 404


def test_filters_narrow_the_list(agent_api, department, agent):
    high = open_ticket(department=department, priority=priority("High"), subject="Lost keys")
    low = open_ticket(department=department, priority=priority("Low"), subject="Broken mug")
    agent_api.post(f"/api/v1/tickets/{low.pk}/claim")

    def numbers(query: str) -> list[str]:
        response = agent_api.get(f"/api/v1/tickets/?{query}")
        assert response.status_code == 200, response.json()
        return sorted(row["number"] for row in response.json()["results"])

    assert numbers(f"priority={priority('High').pk}") == [high.number]
    assert numbers("assignee=me") == [low.number]
    assert numbers("assignee=none") == [high.number]
    assert numbers(f"assignee={agent.pk}") == [low.number]
    assert numbers("search=keys") == [high.number]
    assert numbers("state=closed") == []
    assert numbers("overdue=false") == sorted([high.number, low.number])
    since = (timezone.now() + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert numbers(f"updated_since={since}") == []


def test_bad_filters_are_400_with_the_field(agent_api):
    response = agent_api.get("/api/v1/tickets/?priority=abc&ordering=subject")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"priority", "ordering"}
    twice = agent_api.get("/api/v1/tickets/?status=1&status=2")
    assert twice.status_code == 400 and "status" in twice.json()["errors"]


def test_the_list_pages_with_a_cursor_and_constant_queries(
    agent_api, department, django_assert_max_num_queries
):
    for n in range(7):
        open_ticket(department=department, subject=f"Ticket {n}")
    seen = []
    url = "/api/v1/tickets/?page_size=3&ordering=created_at"
    while url:
        with django_assert_max_num_queries(8):
            page = agent_api.get(url).json()
        seen += [row["subject"] for row in page["results"]]
        url = page["next"]
    assert seen == [f"Ticket {n}" for n in range(7)]


# --- creating -------------------------------------------------------------------------------


def test_an_agent_opens_a_ticket_for_a_customer(agent_api, department):
    response = agent_api.post(
        "/api/v1/tickets/",
        {
            "subject": "Phone call",
            "body": "Customer called about invoices.",
            "customer_email": "caller@example.com",
            "department": department.pk,
            "attachments": [{"name": "notes.txt", "content": b64(b"call notes")}],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    ticket = Ticket.objects.get(pk=response.json()["id"])
    assert ticket.user.email == "caller@example.com" and ticket.source == Source.API
    assert ticket.thread.entries.get().attachments.get().name == "notes.txt"


def test_a_customer_opens_a_ticket_for_themselves_and_cannot_route_it(customer_api, department):
    ok = customer_api.post(
        "/api/v1/tickets/", {"subject": "Help", "body": "Please."}, format="json"
    )
    assert ok.status_code == 201
    assert Ticket.objects.get(pk=ok.json()["id"]).user == customer_api.user
    routed = customer_api.post(
        "/api/v1/tickets/",
        {"subject": "Help", "body": "Please.", "department": department.pk},
        format="json",
    )
    assert routed.status_code == 403


def test_create_validation_errors_name_the_fields(agent_api):
    response = agent_api.post(
        "/api/v1/tickets/", {"body": "", "customer_email": "not-an-address"}, format="json"
    )
    assert response.status_code == 400
    assert {"subject", "customer_email"} <= set(response.json()["errors"])


def test_an_idempotency_key_makes_a_retry_return_the_first_ticket(agent_api, department):
    body = {
        "subject": "Once",
        "body": "Only once.",
        "customer_email": "c@example.com",
        "department": department.pk,
    }
    first = agent_api.post("/api/v1/tickets/", body, format="json", HTTP_IDEMPOTENCY_KEY="abc-1")
    again = agent_api.post("/api/v1/tickets/", body, format="json", HTTP_IDEMPOTENCY_KEY="abc-1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again["Idempotent-Replayed"] == "true"
    assert Ticket.objects.count() == 1
    other = agent_api.post(
        "/api/v1/tickets/", {**body, "subject": "Else"}, format="json", HTTP_IDEMPOTENCY_KEY="abc-1"
    )
    assert other.status_code == 409
    fresh = agent_api.post("/api/v1/tickets/", body, format="json", HTTP_IDEMPOTENCY_KEY="abc-2")
    assert fresh.status_code == 201 and Ticket.objects.count() == 2


def test_a_failed_create_can_be_retried_with_the_same_key(agent_api, department):
    body = {"body": "x", "customer_email": "c@example.com", "department": department.pk}
    bad = agent_api.post("/api/v1/tickets/", body, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert bad.status_code == 400
    good = agent_api.post(
        "/api/v1/tickets/", {**body, "subject": "s"}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert good.status_code == 201


def test_an_oversized_body_is_413(agent_api, settings):
    settings.HELPDESK_API_MAX_BODY_SIZE = 100
    response = agent_api.post(
        "/api/v1/tickets/",
        {"subject": "s", "body": "x" * 500, "customer_email": "c@e.com"},
        format="json",
    )
    assert response.status_code == 413 and response.json()["message"]


# --- changing -------------------------------------------------------------------------------


def test_an_agent_updates_subject_and_priority(agent_api, ticket):
    response = agent_api.patch(
        f"/api/v1/tickets/{ticket.pk}",
        {"subject": "Printer on fire again", "priority": priority("High").pk},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["subject"] == "Printer on fire again"
    assert response.json()["priority"]["name"] == "High"
    actions = set(ticket.thread.events.values_list("action", flat=True))
    assert {EventAction.EDITED, EventAction.PRIORITY} <= actions


def test_closing_needs_ticket_close(department, ticket):
    limited = key_client(agent_user(department=department, role=role("Limited Access")))
    assert "ticket.close" not in role("Limited Access").permissions
    response = limited.patch(
        f"/api/v1/tickets/{ticket.pk}", {"status": closed_status().pk}, format="json"
    )
    assert response.status_code == 403
    ticket.refresh_from_db()
    assert ticket.status.state == "open"


def test_an_agent_closes_a_ticket(agent_api, ticket):
    response = agent_api.patch(
        f"/api/v1/tickets/{ticket.pk}", {"status": closed_status().pk}, format="json"
    )
    assert response.status_code == 200 and response.json()["status"]["state"] == "closed"


def test_a_refused_change_rolls_back_the_others(department, ticket):
    limited = key_client(agent_user(department=department, role=role("Limited Access")))
    response = limited.patch(
        f"/api/v1/tickets/{ticket.pk}",
        {"subject": "Changed", "status": closed_status().pk},
        format="json",
    )
    assert response.status_code == 403
    ticket.refresh_from_db()
    assert ticket.subject == "Printer on fire"


def test_a_customer_cannot_change_priority(customer_api, department):
    mine = open_ticket(user=customer_api.user, department=department)
    response = customer_api.patch(
        f"/api/v1/tickets/{mine.pk}", {"priority": priority("High").pk}, format="json"
    )
    assert response.status_code == 403


def test_reply_note_and_customer_message(agent_api, department):
    customer = UserFactory()
    ticket = open_ticket(user=customer, department=department)
    reply = agent_api.post(f"/api/v1/tickets/{ticket.pk}/reply", {"body": "On it."}, format="json")
    note = agent_api.post(
        f"/api/v1/tickets/{ticket.pk}/notes", {"body": "Call the vendor."}, format="json"
    )
    customer_client = key_client(customer)
    message = customer_client.post(
        f"/api/v1/tickets/{ticket.pk}/messages", {"body": "Thanks"}, format="json"
    )
    assert (reply.status_code, note.status_code, message.status_code) == (201, 201, 201)
    assert reply.json()["kind"] == EntryKind.RESPONSE and note.json()["kind"] == EntryKind.NOTE

    agent_kinds = [e["kind"] for e in agent_api.get(f"/api/v1/tickets/{ticket.pk}/entries").json()]
    customer_kinds = [
        e["kind"] for e in customer_client.get(f"/api/v1/tickets/{ticket.pk}/entries").json()
    ]
    assert agent_kinds == ["message", "response", "note", "message"]
    assert customer_kinds == ["message", "response", "message"]
    # Customers may not post notes or replies.
    assert (
        customer_client.post(
            f"/api/v1/tickets/{ticket.pk}/notes", {"body": "x"}, format="json"
        ).status_code
        == 403
    )


def test_an_empty_reply_is_400(agent_api, ticket):
    response = agent_api.post(f"/api/v1/tickets/{ticket.pk}/reply", {"body": " "}, format="json")
    assert response.status_code == 400 and "body" in response.json()["errors"]


def test_assign_claim_release_and_transfer(agent_api, agent, department, ticket):
    colleague = agent_user(department=department)
    team = TeamFactory()
    assigned = agent_api.post(
        f"/api/v1/tickets/{ticket.pk}/assign",
        {"agent": colleague.pk, "team": team.pk},
        format="json",
    )
    assert assigned.status_code == 200, assigned.json()
    assert assigned.json()["assignee"]["id"] == colleague.pk
    assert assigned.json()["team"]["id"] == team.pk
    released = agent_api.post(
        f"/api/v1/tickets/{ticket.pk}/release", {"agent": True}, format="json"
    )
    assert released.status_code == 200 and released.json()["assignee"] is None
    claimed = agent_api.post(f"/api/v1/tickets/{ticket.pk}/claim")
    assert claimed.json()["assignee"]["id"] == agent.pk
    again = agent_api.post(f"/api/v1/tickets/{ticket.pk}/claim")
    assert again.status_code == 400 and "agent" in again.json()["errors"]

    target = DepartmentFactory(name="Second line")
    moved = agent_api.post(
        f"/api/v1/tickets/{ticket.pk}/transfer", {"department": target.pk}, format="json"
    )
    assert moved.status_code in (200, 204)
    ticket.refresh_from_db()
    assert ticket.department == target


def test_assigning_to_an_unknown_agent_is_400(agent_api, ticket):
    response = agent_api.post(
        f"/api/v1/tickets/{ticket.pk}/assign", {"agent": 999999}, format="json"
    )
    assert response.status_code == 400 and "agent" in response.json()["errors"]


def test_collaborators_are_added_listed_and_removed(agent_api, ticket):
    added = agent_api.post(
        f"/api/v1/tickets/{ticket.pk}/collaborators", {"email": "boss@example.com"}, format="json"
    )
    assert added.status_code == 201
    listed = agent_api.get(f"/api/v1/tickets/{ticket.pk}/collaborators").json()
    assert [c["email"] for c in listed] == ["boss@example.com"]
    removed = agent_api.delete(f"/api/v1/tickets/{ticket.pk}/collaborators/{added.json()['id']}")
    assert removed.status_code == 204
    assert agent_api.get(f"/api/v1/tickets/{ticket.pk}/collaborators").json() == []


def test_events_are_newest_first_and_for_agents_only(agent_api, customer_api, department):
    ticket = open_ticket(user=customer_api.user, department=department)
    agent_api.post(f"/api/v1/tickets/{ticket.pk}/claim")
    events = agent_api.get(f"/api/v1/tickets/{ticket.pk}/events").json()
    assert [e["action"] for e in events][:2] == [EventAction.CLAIMED, EventAction.CREATED][:2]
    assert events[-1]["action"] == EventAction.CREATED
    assert customer_api.get(f"/api/v1/tickets/{ticket.pk}/events").status_code == 403


# --- attachments ----------------------------------------------------------------------------


def test_attachments_upload_by_multipart_and_download_with_access_checks(
    agent_api, customer_api, department
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    ticket = open_ticket(user=customer_api.user, department=department)
    response = agent_api.post(
        f"/api/v1/tickets/{ticket.pk}/reply",
        {"body": "See attached", "files": SimpleUploadedFile("log.txt", b"all good")},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    attachment = response.json()["attachments"][0]
    download = customer_api.get(attachment["download_url"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"all good"
    assert "attachment" in download["Content-Disposition"]

    stranger = key_client(UserFactory())
    assert stranger.get(attachment["download_url"]).status_code == 404


def test_customers_never_download_files_of_internal_notes(agent, customer_api, department):
    ticket = open_ticket(user=customer_api.user, department=department)
    note = ticket_note_add(
        ticket=ticket, by=agent, body="secret", attachments=[AttachmentUpload("s.txt", b"s")]
    )
    attachment = Attachment.objects.get(entry=note)
    url = f"/api/v1/attachments/{attachment.pk}/download"
    assert customer_api.get(url).status_code == 404
    assert key_client(agent).get(url).status_code == 200


def test_an_agent_of_another_department_gets_404_everywhere(ticket):
    outsider = key_client(agent_user(department=DepartmentFactory(name="Other")))
    for method, url in [
        ("get", f"/api/v1/tickets/{ticket.pk}"),
        ("get", f"/api/v1/tickets/{ticket.pk}/entries"),
        ("get", f"/api/v1/tickets/{ticket.pk}/events"),
        ("post", f"/api/v1/tickets/{ticket.pk}/reply"),
        ("post", f"/api/v1/tickets/{ticket.pk}/claim"),
        ("patch", f"/api/v1/tickets/{ticket.pk}"),
    ]:
        response = getattr(outsider, method)(url, {"body": "x"}, format="json")
        assert response.status_code == 404, (method, url)


def test_idempotency_answers_are_forgotten_after_a_day(agent_api, department):
    from api.models import IdempotentRequest
    from api.tasks import idempotent_requests_purge_task

    body = {"subject": "s", "body": "b", "customer_email": "c@e.com", "department": department.pk}
    agent_api.post("/api/v1/tickets/", body, format="json", HTTP_IDEMPOTENCY_KEY="day")
    IdempotentRequest.objects.update(created_at=timezone.now() - timedelta(days=2))
    assert idempotent_requests_purge_task() == 1
    again = agent_api.post("/api/v1/tickets/", body, format="json", HTTP_IDEMPOTENCY_KEY="day")
    assert again.status_code == 201 and Ticket.objects.count() == 2


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/tickets/?status=10000000000000000000000000",
        "/api/v1/tickets/10000000000000000000000000",
        "/api/v1/attachments/10000000000000000000000000/download",
        "/api/v1/departments/10000000000000000000000000",
    ],
)
def test_out_of_range_numbers_are_client_errors(agent_api, url):
    response = agent_api.get(url)
    assert response.status_code in (400, 404) and response.json()["message"]
