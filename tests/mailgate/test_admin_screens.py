"""The mail admin screens: mailboxes, incoming mail and email templates, as an admin uses them."""

import shutil
import socket
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from django.db import connection
from django.urls import URLPattern, reverse

from helpdesk.models import AdminLogEntry
from mailgate import fetching, services, urls_admin
from mailgate.models import EmailTemplate, InboundMessage, InboundStatus, Mailbox
from mailgate.templates_default import DEFAULT_TEMPLATES
from tests.accounts.factories import UserFactory, agent_user, role
from tickets import services as ticket_services
from tickets.models import Ticket

from .dovecot import dovecot_fixture  # noqa: F401 - provides the `dovecot` fixture

pytestmark = pytest.mark.django_db

PASSWORD = "s3cret-imap-pass"


@pytest.fixture(scope="module", autouse=True)
def _remove_sqlite_lock_files(django_db_setup):
    yield
    if connection.vendor == "sqlite":
        shutil.rmtree(fetching.lock_folder(str(connection.settings_dict["NAME"])), True)


@pytest.fixture(autouse=True)
def quick_timeouts(settings):
    settings.HELPDESK_MAIL_FETCH_TIMEOUT = 5


@pytest.fixture
def admin(department):
    return agent_user(department=department, role=role("Administrator"), user__name="Ada Admin")


@pytest.fixture
def admin_client(client, admin):
    client.force_login(admin)
    return client


@pytest.fixture
def mailbox(department):
    return Mailbox.objects.create(
        name="Support",
        email="support@helpdesk.example",
        host="imap.helpdesk.example",
        username="support",
        password=PASSWORD,
        department=department,
    )


def mail(*, subject="Rocket skates broken", sender="Wile E. <wile@acme.example>", **parts):
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "support@helpdesk.example"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="acme.example")
    message.set_content(parts.get("text", "They go left."))
    if "html" in parts:
        message.add_alternative(parts["html"], subtype="html")
    for name, content in parts.get("attachments", []):
        message.add_attachment(content, maintype="application", subtype="pdf", filename=name)
    return message.as_bytes()


def failed_message(mailbox, monkeypatch, **kwargs) -> InboundMessage:
    """A stored message whose processing broke (the ticket service crashed)."""
    message, _new = services.inbound_receive(raw=mail(**kwargs), mailbox=mailbox, channel="imap")
    with monkeypatch.context() as patch:
        patch.setattr(ticket_services, "ticket_open", lambda **kw: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            services.inbound_process(message=message)
    message.refresh_from_db()
    assert message.status == InboundStatus.FAILED
    return message


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]] if response.context else []


# --- who may open the screens ---------------------------------------------------------------


def _urls() -> list[str]:
    urls = []
    for pattern in urls_admin.urlpatterns:
        assert isinstance(pattern, URLPattern)
        kwargs = {
            name: "ticket.autoresp" if name == "code" else 1 for name in pattern.pattern.converters
        }
        urls.append(reverse(f"mail_admin:{pattern.name}", kwargs=kwargs))
    return urls


MAIL_ADMIN_URLS = _urls()


@pytest.mark.parametrize("url", MAIL_ADMIN_URLS)
def test_an_agent_without_the_email_permission_gets_403(client, agent, url):
    client.force_login(agent)
    assert client.get(url).status_code == 403
    assert client.post(url).status_code == 403


def test_a_routing_admin_cannot_manage_mail(client, department):
    from accounts.models import Role

    routing_admin = Role.objects.create(
        name="Routing admin", permissions=[*role("All Access").permissions, "admin.routing"]
    )
    client.force_login(agent_user(department=department, role=routing_admin))
    assert client.get(reverse("mail_admin:mailbox_list")).status_code == 403
    index = client.get(reverse("staff_admin:index")).content.decode()
    assert reverse("mail_admin:mailbox_list") not in index


@pytest.mark.parametrize("url", MAIL_ADMIN_URLS)
def test_a_customer_is_sent_to_the_portal(client, url):
    client.force_login(UserFactory())
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:home")


def test_anonymous_visitors_go_to_the_staff_sign_in(client):
    response = client.get(reverse("mail_admin:inbound_list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("staff:login"))


def test_the_admin_menu_links_the_mail_screens(admin_client):
    page = admin_client.get(reverse("mail_admin:mailbox_list")).content.decode()
    for name in ("mailbox_list", "inbound_list", "template_list"):
        assert reverse(f"mail_admin:{name}") in page


# --- mailboxes ------------------------------------------------------------------------------


def mailbox_data(**overrides) -> dict:
    data = {
        "name": "Sales",
        "email": "Sales@Helpdesk.example",
        "protocol": "imap",
        "host": "imap.helpdesk.example",
        "port": "",
        "security": "ssl",
        "username": "sales",
        "password": PASSWORD,
        "folder": "INBOX",
        "after_fetch": "seen",
        "move_to_folder": "",
        "batch_size": "50",
        "department": "",
        "help_topic": "",
        "priority": "",
        "is_active": "on",
        "max_failures": "5",
    }
    data.update(overrides)
    return data


def test_creating_a_mailbox_keeps_the_password_out_of_every_page_and_the_log(admin_client):
    response = admin_client.post(reverse("mail_admin:mailbox_create"), mailbox_data())
    assert response.status_code == 302
    mailbox = Mailbox.objects.get(name="Sales")
    assert mailbox.email == "sales@helpdesk.example"
    assert mailbox.password == PASSWORD
    assert response["Location"] == reverse("mail_admin:mailbox_edit", args=[mailbox.pk])

    for url in (
        reverse("mail_admin:mailbox_edit", args=[mailbox.pk]),
        reverse("mail_admin:mailbox_list"),
    ):
        page = admin_client.get(url).content.decode()
        assert PASSWORD not in page
        assert "sales@helpdesk.example" in page
    entry = AdminLogEntry.objects.get(object_type="mailgate.mailbox", action="create")
    assert PASSWORD not in str(entry.changes)
    assert entry.changes["password"][1] != PASSWORD


def test_a_form_with_errors_does_not_echo_the_typed_password(admin_client):
    response = admin_client.post(
        reverse("mail_admin:mailbox_create"), mailbox_data(host="", email="not an address")
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert PASSWORD not in page
    form = response.context["form"]
    assert "host" in form.errors and "email" in form.errors
    assert not Mailbox.objects.exists()


def test_move_without_a_folder_is_refused(admin_client):
    response = admin_client.post(
        reverse("mail_admin:mailbox_create"), mailbox_data(after_fetch="move")
    )
    assert response.status_code == 200
    assert "move_to_folder" in response.context["form"].errors


def test_editing_with_an_empty_password_keeps_it_and_a_new_one_replaces_it(admin_client, mailbox):
    url = reverse("mail_admin:mailbox_edit", args=[mailbox.pk])
    assert "A password is stored" in admin_client.get(url).content.decode()
    data = mailbox_data(name="Support desk", email=mailbox.email, password="")
    response = admin_client.post(url, data)
    assert response.status_code == 302
    mailbox.refresh_from_db()
    assert (mailbox.name, mailbox.password) == ("Support desk", PASSWORD)
    entry = AdminLogEntry.objects.get(object_type="mailgate.mailbox", action="update")
    assert "password" not in entry.changes
    assert entry.changes["name"] == ["Support", "Support desk"]

    admin_client.post(url, {**data, "password": "a-new-one"})
    mailbox.refresh_from_db()
    assert mailbox.password == "a-new-one"
    latest = AdminLogEntry.objects.filter(object_type="mailgate.mailbox").first()
    assert "a-new-one" not in str(latest.changes)
    assert "password" in latest.changes


def test_switching_a_mailbox_off_and_on_again_starts_its_failures_afresh(admin_client, mailbox):
    Mailbox.objects.filter(pk=mailbox.pk).update(error_count=5, is_active=False)
    response = admin_client.post(reverse("mail_admin:mailbox_activate", args=[mailbox.pk]))
    assert response.status_code == 302
    mailbox.refresh_from_db()
    assert mailbox.is_active and mailbox.error_count == 0
    admin_client.post(reverse("mail_admin:mailbox_deactivate", args=[mailbox.pk]))
    mailbox.refresh_from_db()
    assert not mailbox.is_active
    actions = list(
        AdminLogEntry.objects.filter(object_type="mailgate.mailbox")
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == ["restore", "archive"]
    assert (
        admin_client.get(reverse("mail_admin:mailbox_activate", args=[mailbox.pk])).status_code
        == 405
    )


def test_the_list_shows_the_last_error_escaped(admin_client, mailbox):
    Mailbox.objects.filter(pk=mailbox.pk).update(
        error_count=2, last_error="IMAP <script>alert(1)</script>: the server said: NO"
    )
    page = admin_client.get(reverse("mail_admin:mailbox_list")).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page
    assert PASSWORD not in page


@pytest.fixture
def account(dovecot):
    return dovecot.new_user()


@pytest.fixture
def dovecot_mailbox(dovecot, account, department):
    return Mailbox.objects.create(
        name="Dovecot",
        email="support@helpdesk.example",
        host=dovecot.host,
        port=dovecot.imap_port,
        security="none",
        username=account,
        password=dovecot.password,
        department=department,
    )


def test_test_connection_reports_success(admin_client, dovecot_mailbox):
    response = admin_client.post(
        reverse("mail_admin:mailbox_test", args=[dovecot_mailbox.pk]), follow=True
    )
    texts = messages_of(response)
    assert any("Signed in" in text and "INBOX" in text for text in texts), texts


def test_test_connection_reports_a_wrong_password_without_showing_it(admin_client, dovecot_mailbox):
    Mailbox.objects.filter(pk=dovecot_mailbox.pk).update(password="wrong-password-123")
    response = admin_client.post(
        reverse("mail_admin:mailbox_test", args=[dovecot_mailbox.pk]), HTTP_HX_REQUEST="true"
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "connection failed" in page
    assert "the server said" in page
    assert "wrong-password-123" not in page
    dovecot_mailbox.refresh_from_db()
    assert dovecot_mailbox.error_count == 0  # a test is not a fetch


def test_test_connection_reports_a_closed_port(admin_client, mailbox):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    Mailbox.objects.filter(pk=mailbox.pk).update(host="127.0.0.1", port=port, security="none")
    response = admin_client.post(reverse("mail_admin:mailbox_test", args=[mailbox.pk]), follow=True)
    assert any("connection refused" in text for text in messages_of(response))


def test_fetch_now_fetches_the_mailbox(admin_client, dovecot, account, dovecot_mailbox):
    from imapclient import IMAPClient

    with IMAPClient(dovecot.host, dovecot.imap_port, ssl=False, timeout=5) as client:
        client.login(account, dovecot.password)
        client.append("INBOX", mail(subject="Fetched on demand").replace(b"\n", b"\r\n"))
    response = admin_client.post(
        reverse("mail_admin:mailbox_fetch", args=[dovecot_mailbox.pk]), follow=True
    )
    assert any("will be fetched now" in text for text in messages_of(response))
    # Tests run Celery eagerly: the queued fetch has run.
    assert Ticket.objects.filter(subject="Fetched on demand").count() == 1


def test_fetch_now_refuses_a_mailbox_that_is_off(admin_client, mailbox):
    Mailbox.objects.filter(pk=mailbox.pk).update(is_active=False)
    response = admin_client.post(
        reverse("mail_admin:mailbox_fetch", args=[mailbox.pk]), follow=True
    )
    assert any("switched off" in text for text in messages_of(response))


# --- incoming mail --------------------------------------------------------------------------


def test_the_list_filters_by_status_and_mailbox(admin_client, mailbox, monkeypatch):
    other = Mailbox.objects.create(name="Other", email="other@helpdesk.example")
    failed = failed_message(mailbox, monkeypatch, subject="Broken one")
    ok, _new = services.inbound_receive(raw=mail(subject="Fine one"), mailbox=other, channel="imap")
    services.inbound_process(message=ok)

    url = reverse("mail_admin:inbound_list")
    page = admin_client.get(url).content.decode()
    assert "Broken one" in page and "Fine one" in page
    page = admin_client.get(url, {"status": "failed"}).content.decode()
    assert "Broken one" in page and "Fine one" not in page
    assert "ZeroDivisionError" in page
    page = admin_client.get(url, {"mailbox": other.pk}).content.decode()
    assert "Fine one" in page and "Broken one" not in page
    ok.refresh_from_db()
    assert reverse("tickets_staff:ticket", args=[ok.ticket.number]) in page
    # Only failed (or unprocessed) rows can be ticked for a retry.
    page = admin_client.get(url).content.decode()
    assert f'name="ids" value="{failed.pk}"' in page
    assert f'name="ids" value="{ok.pk}"' not in page


@pytest.mark.parametrize("processed", [True, False], ids=["processed", "never processed"])
def test_the_list_takes_a_fixed_number_of_queries(
    admin_client, mailbox, django_assert_max_num_queries, processed
):
    # A message stored but never processed (a crash between storing and processing) has no
    # From or Subject in its row yet: the list reads them from the stored bytes.
    def add(count: int) -> None:
        for _ in range(count):
            message, _new = services.inbound_receive(
                raw=mail(subject=f"Mail {InboundMessage.objects.count()}"),
                mailbox=mailbox,
                channel="imap",
            )
            if processed:
                services.inbound_process(message=message)

    add(2)
    url = reverse("mail_admin:inbound_list")
    admin_client.get(url)  # warm the per-process caches
    with django_assert_max_num_queries(12) as few:
        admin_client.get(url)
    add(20)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = admin_client.get(url).content.decode()
    assert all(f"Mail {n}<" in page for n in range(22))
    if processed:
        assert page.count("/scp/tickets/") >= 22


def test_subjects_and_senders_are_escaped_in_the_list(admin_client, mailbox, monkeypatch):
    failed_message(mailbox, monkeypatch, subject="<script>alert(1)</script>")
    page = admin_client.get(reverse("mail_admin:inbound_list")).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page


def test_the_detail_page_shows_the_parse_result_sanitised(admin_client, mailbox, monkeypatch):
    message = failed_message(
        mailbox,
        monkeypatch,
        subject="<img src=x onerror=alert(1)>",
        sender='"<b>Evil</b>" <evil@acme.example>',
        text="Plain <script>alert(2)</script> text",
        html='<p>Hello <b>there</b></p><script>alert(3)</script><img src="x" onerror="alert(4)">',
        attachments=[("a<script>b.pdf", b"%PDF-1.4")],
    )
    response = admin_client.get(reverse("mail_admin:inbound_detail", args=[message.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "<b>there</b>" in page  # sanitised HTML is shown as HTML
    assert "alert(3)" not in page
    assert "onerror" not in page.replace("onerror=alert(1)&gt;", "")  # only in the escaped subject
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "Plain &lt;script&gt;alert(2)&lt;/script&gt; text" in page
    assert "a&lt;script&gt;b.pdf" in page
    assert "<script>" not in page
    assert "ZeroDivisionError" in page
    assert "Message-ID" in page
    assert reverse("mail_admin:inbound_retry", args=[message.pk]) in page


def test_an_unparseable_message_shows_why(admin_client, mailbox):
    message, _new = services.inbound_receive(
        raw=b"\x00\x01 not mail", mailbox=mailbox, channel="imap"
    )
    services.inbound_process(message=message)
    page = admin_client.get(
        reverse("mail_admin:inbound_detail", args=[message.pk])
    ).content.decode()
    assert "cannot be parsed" in page


def test_retrying_a_failed_message_makes_its_ticket(admin_client, mailbox, monkeypatch):
    message = failed_message(mailbox, monkeypatch, subject="Retry me")
    response = admin_client.post(
        reverse("mail_admin:inbound_retry", args=[message.pk]), follow=True
    )
    assert any("1 messages were processed" in text for text in messages_of(response))
    message.refresh_from_db()
    assert message.status == InboundStatus.PROCESSED
    ticket = Ticket.objects.get(subject="Retry me")
    assert message.ticket == ticket
    assert reverse("tickets_staff:ticket", args=[ticket.number]) in response.content.decode()
    entry = AdminLogEntry.objects.get(object_type="mailgate.inboundmessage")
    assert entry.changes["status"] == ["failed", "processed"]
    # Processed once: a second retry does nothing.
    admin_client.post(reverse("mail_admin:inbound_retry", args=[message.pk]))
    assert Ticket.objects.filter(subject="Retry me").count() == 1


def test_a_retry_that_fails_again_says_why(admin_client, mailbox, monkeypatch):
    message = failed_message(mailbox, monkeypatch)
    monkeypatch.setattr(ticket_services, "ticket_open", lambda **kw: 1 / 0)
    response = admin_client.post(
        reverse("mail_admin:inbound_retry", args=[message.pk]), follow=True
    )
    assert any(
        "failed again" in text and "ZeroDivisionError" in text for text in messages_of(response)
    )
    message.refresh_from_db()
    assert message.status == InboundStatus.FAILED
    assert message.attempts == 2  # the first failure and this retry


def test_bulk_retry_processes_the_ticked_messages(admin_client, mailbox, monkeypatch):
    first = failed_message(mailbox, monkeypatch, subject="First")
    second = failed_message(mailbox, monkeypatch, subject="Second")
    third = failed_message(mailbox, monkeypatch, subject="Third")
    response = admin_client.post(
        reverse("mail_admin:inbound_retry_bulk"),
        {"ids": [first.pk, second.pk], "status": "failed", "mailbox": ""},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("mail_admin:inbound_list") + "?status=failed"
    assert set(Ticket.objects.values_list("subject", flat=True)) == {"First", "Second"}
    third.refresh_from_db()
    assert third.status == InboundStatus.FAILED

    admin_client.post(reverse("mail_admin:inbound_retry_bulk"), {"all_failed": "1"})
    assert Ticket.objects.filter(subject="Third").count() == 1


def test_bulk_retry_without_a_choice_says_so(admin_client):
    response = admin_client.post(reverse("mail_admin:inbound_retry_bulk"), {}, follow=True)
    assert any("Tick the messages" in text for text in messages_of(response))


@pytest.mark.parametrize("in_row_max", [128 * 1024, 0], ids=["kept in its row", "in a file"])
def test_the_raw_message_downloads_as_an_eml_attachment(
    admin_client, mailbox, settings, in_row_max
):
    settings.HELPDESK_MAIL_RAW_IN_ROW_MAX = in_row_max
    raw = mail(subject="Raw")
    message, _new = services.inbound_receive(raw=raw, mailbox=mailbox, channel="imap")
    response = admin_client.get(reverse("mail_admin:inbound_raw", args=[message.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "message/rfc822"
    assert response["Content-Disposition"] == f'attachment; filename="message-{message.pk}.eml"'
    assert b"".join(response.streaming_content) == raw
    assert admin_client.get(reverse("mail_admin:inbound_raw", args=[999999])).status_code == 404


# --- email templates ------------------------------------------------------------------------


def test_the_template_list_shows_every_email_by_audience(admin_client):
    page = admin_client.get(reverse("mail_admin:template_list")).content.decode()
    assert "To the customer" in page and "To agents" in page
    for code in DEFAULT_TEMPLATES:
        assert reverse("mail_admin:template_edit", args=[code]) in page


def test_an_unknown_template_is_404(admin_client):
    assert admin_client.get(reverse("mail_admin:template_edit", args=["nope"])).status_code == 404


def template_data(**overrides) -> dict:
    default = DEFAULT_TEMPLATES["ticket.autoresp"]
    data = {
        "subject": default["subject"],
        "body_text": default["body_text"],
        "body_html": default["body_html"],
        "is_active": "on",
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    ("field", "source", "expected"),
    [
        ("body_text", "Hello {% if ticket.number %}unclosed", "endif"),
        ("subject", "{{ ticket.number|nosuchfilter }}", "nosuchfilter"),
        ("body_html", "{% load static %}<p>hi</p>", "load"),
    ],
)
def test_a_template_syntax_error_is_refused_with_the_error(admin_client, field, source, expected):
    url = reverse("mail_admin:template_edit", args=["ticket.autoresp"])
    before = (
        EmailTemplate.objects.filter(code="ticket.autoresp")
        .values_list("subject", "body_text", "body_html")
        .first()
    )
    response = admin_client.post(url, template_data(**{field: source}))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors
    assert expected in " ".join(errors[field])
    assert expected in response.content.decode()
    after = (
        EmailTemplate.objects.filter(code="ticket.autoresp")
        .values_list("subject", "body_text", "body_html")
        .first()
    )
    assert after == before
    assert not AdminLogEntry.objects.filter(object_type="mailgate.emailtemplate").exists()


def test_saving_a_template_changes_the_email_and_logs_it(admin_client):
    url = reverse("mail_admin:template_edit", args=["ticket.autoresp"])
    response = admin_client.post(url, template_data(subject="We got it [#{{ ticket.number }}]"))
    assert response.status_code == 302
    row = EmailTemplate.objects.get(code="ticket.autoresp")
    assert row.subject == "We got it [#{{ ticket.number }}]"
    entry = AdminLogEntry.objects.get(object_type="mailgate.emailtemplate")
    assert entry.changes["subject"][1] == "We got it [#{{ ticket.number }}]"
    page = admin_client.get(reverse("mail_admin:template_list")).content.decode()
    assert "customised" in page


def test_the_preview_renders_sample_data_without_saving(admin_client):
    url = reverse("mail_admin:template_preview", args=["ticket.autoresp"])
    data = template_data(
        subject="Got #{{ ticket.number }} from {{ customer.name }}",
        body_html="<p>Hi {{ recipient.name }}</p><script>alert(1)</script>",
    )
    response = admin_client.post(url, data, HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="template-preview"' in page
    assert "Got #123456 from Carol Customer" in page
    assert "<p>Hi Carol Customer</p>" in page
    assert "alert(1)" not in page
    assert "<html" not in page  # the fragment only

    full = admin_client.post(url, data)
    assert "Got #123456 from Carol Customer" in full.content.decode()
    assert "<html" in full.content.decode()
    subject = (
        EmailTemplate.objects.filter(code="ticket.autoresp")
        .values_list("subject", flat=True)
        .first()
    )
    assert subject in (None, DEFAULT_TEMPLATES["ticket.autoresp"]["subject"])


def test_the_preview_shows_a_syntax_error(admin_client):
    url = reverse("mail_admin:template_preview", args=["ticket.autoresp"])
    response = admin_client.post(
        url, template_data(body_text="{% for x in %}"), HTTP_HX_REQUEST="true"
    )
    page = response.content.decode()
    assert "The template has errors" in page
    assert "for" in page


def test_reset_to_default_puts_the_shipped_text_back(admin_client):
    edit = reverse("mail_admin:template_edit", args=["ticket.alert"])
    default = DEFAULT_TEMPLATES["ticket.alert"]
    admin_client.post(
        edit,
        {"subject": "Changed", "body_text": "Changed body", "body_html": "", "is_active": ""},
    )
    assert EmailTemplate.objects.get(code="ticket.alert").subject == "Changed"
    assert "Reset to default" in admin_client.get(edit).content.decode()
    response = admin_client.post(reverse("mail_admin:template_reset", args=["ticket.alert"]))
    assert response.status_code == 302
    row = EmailTemplate.objects.get(code="ticket.alert")
    assert (row.subject, row.body_text, row.body_html) == (
        default["subject"],
        default["body_text"],
        default["body_html"],
    )
    assert row.is_active is False  # whether it is sent stays as the admin set it
    last = AdminLogEntry.objects.filter(object_type="mailgate.emailtemplate").first()
    assert last.changes["subject"] == ["Changed", default["subject"]]
