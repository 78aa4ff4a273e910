"""Attachment downloads: access checked on every request, and never a file that runs in
the browser."""

import io

import pytest
from django.http import Http404
from django.test import RequestFactory
from django.urls import reverse
from PIL import Image

from tests.accounts.factories import UserFactory, agent_user
from tests.routing.factories import DepartmentFactory
from tests.tickets.factories import open_ticket
from tickets import services
from tickets.models import Attachment
from tickets.services import AttachmentUpload
from tickets.views.attachments import attachment_response

pytestmark = pytest.mark.django_db


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (0, 90, 200)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def customer():
    return UserFactory(email="casey@example.com", name="Casey")


@pytest.fixture
def ticket(department, customer):
    return open_ticket(
        user=customer,
        department=department,
        attachments=[
            AttachmentUpload("photo.png", png_bytes(), "image/png"),
            AttachmentUpload("invoice.pdf", b"%PDF-1.4 fake", "application/pdf"),
            AttachmentUpload("drawing.svg", b"<svg onload='alert(1)'/>", "image/svg+xml"),
            AttachmentUpload("page.html", b"<script>alert(1)</script>", "text/html"),
        ],
    )


def attachment(name: str) -> Attachment:
    return Attachment.objects.select_related("entry__thread__ticket").get(name=name)


def url(item: Attachment) -> str:
    return reverse("tickets_staff:attachment", args=[item.pk, item.name])


def body(response) -> bytes:
    return b"".join(response.streaming_content)


class TestStaffDownloads:
    def test_an_image_is_shown_inline_with_a_locked_down_response(self, client, agent, ticket):
        client.force_login(agent)
        response = client.get(url(attachment("photo.png")))
        assert response.status_code == 200
        assert response["Content-Type"] == "image/png"
        assert response["Content-Disposition"].startswith("inline")
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
        assert body(response) == png_bytes()

    def test_an_image_can_be_downloaded_instead(self, client, agent, ticket):
        client.force_login(agent)
        response = client.get(url(attachment("photo.png")) + "?download=1")
        assert response["Content-Disposition"].startswith('attachment; filename="photo.png"')

    def test_other_files_are_downloads(self, client, agent, ticket):
        client.force_login(agent)
        response = client.get(url(attachment("invoice.pdf")))
        assert response["Content-Disposition"] == 'attachment; filename="invoice.pdf"'
        assert response["Content-Type"] == "application/pdf"
        assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"

    @pytest.mark.parametrize("name", ["drawing.svg", "page.html"])
    def test_svg_and_html_never_render(self, client, agent, ticket, name):
        client.force_login(agent)
        response = client.get(url(attachment(name)))
        assert response["Content-Disposition"].startswith("attachment")
        assert response["Content-Type"] == "application/octet-stream"
        assert response["X-Content-Type-Options"] == "nosniff"

    def test_a_hostile_file_name_stays_inside_the_header(self, client, agent, ticket):
        services.ticket_note_add(
            ticket=ticket,
            by=agent,
            body="file",
            attachments=[AttachmentUpload('a"\r\nSet-Cookie: x=1;.txt', b"x", "text/plain")],
        )
        item = Attachment.objects.get(name__startswith="a")
        client.force_login(agent)
        response = client.get(url(item))
        assert response.status_code == 200
        assert "Set-Cookie" not in response.headers
        assert "\n" not in response["Content-Disposition"]

    def test_an_agent_of_another_department_gets_404(self, client, ticket):
        client.force_login(agent_user(department=DepartmentFactory()))
        assert client.get(url(attachment("photo.png"))).status_code == 404

    def test_an_unknown_attachment_is_404(self, client, agent):
        client.force_login(agent)
        missing = reverse("tickets_staff:attachment", args=[999999, "x.png"])
        assert client.get(missing).status_code == 404

    def test_anonymous_visitors_are_sent_to_sign_in(self, client, ticket):
        response = client.get(url(attachment("photo.png")))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("staff:login"))


class TestReuseForCustomers:
    """`attachment_response` is the portal's too: customers get their ticket's files, never
    another customer's and never those of internal notes."""

    def request_as(self, user):
        request = RequestFactory().get("/")
        request.user = user
        return request

    def test_the_customer_gets_the_files_of_their_ticket(self, ticket, customer):
        response = attachment_response(self.request_as(customer), attachment("invoice.pdf"))
        assert response.status_code == 200
        assert response["Content-Disposition"].startswith("attachment")

    def test_another_customer_gets_404(self, ticket):
        with pytest.raises(Http404):
            attachment_response(self.request_as(UserFactory()), attachment("invoice.pdf"))

    def test_note_attachments_are_hidden_from_customers(self, ticket, customer, agent):
        services.ticket_note_add(
            ticket=ticket,
            by=agent,
            body="internal",
            attachments=[AttachmentUpload("internal.txt", b"secret", "text/plain")],
        )
        with pytest.raises(Http404):
            attachment_response(self.request_as(customer), attachment("internal.txt"))
        response = attachment_response(self.request_as(agent), attachment("internal.txt"))
        assert body(response) == b"secret"

    def test_images_can_be_forced_to_download(self, ticket, customer):
        response = attachment_response(
            self.request_as(customer), attachment("photo.png"), inline_images=False
        )
        assert response["Content-Disposition"].startswith("attachment")


class TestThumbnails:
    def test_a_large_image_gets_a_small_png_thumbnail_made_once(self, client, agent, ticket):
        buffer = io.BytesIO()
        Image.new("RGB", (1600, 1200), (10, 200, 10)).save(buffer, "JPEG")
        services.ticket_note_add(
            ticket=ticket,
            by=agent,
            body="big",
            attachments=[AttachmentUpload("big.jpg", buffer.getvalue(), "image/jpeg")],
        )
        client.force_login(agent)
        item = attachment("big.jpg")
        for _attempt in range(2):
            response = client.get(url(item) + "?thumb=1")
            assert response.status_code == 200
            assert response["Content-Type"] == "image/png"
            assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
            with Image.open(io.BytesIO(body(response))) as thumbnail:
                assert thumbnail.size == (320, 240)
        page = client.get(reverse("tickets_staff:ticket", args=[ticket.number])).content.decode()
        assert url(item) + "?thumb=1" in page

    def test_thumbnails_are_for_images_only_and_check_access(self, client, agent, ticket):
        client.force_login(agent)
        response = client.get(url(attachment("drawing.svg")) + "?thumb=1")
        assert response["Content-Disposition"].startswith("attachment")
        assert response["Content-Type"] == "application/octet-stream"
        client.force_login(agent_user(department=DepartmentFactory()))
        assert client.get(url(attachment("photo.png")) + "?thumb=1").status_code == 404
