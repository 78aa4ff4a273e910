"""The emergency admin never shows a mailbox password back, and keeps it when left empty."""

import pytest
from django.urls import reverse

from accounts.models import User
from mailgate.models import Mailbox

pytestmark = pytest.mark.django_db


def test_the_mailbox_password_is_write_only(client):
    client.force_login(User.objects.create_superuser("root@example.com", "pw"))
    mailbox = Mailbox.objects.create(
        name="Support",
        email="support@example.com",
        host="imap.example.com",
        username="support",
        password="s3cret-imap-pass",
    )
    url = reverse("admin:mailgate_mailbox_change", args=[mailbox.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert b"s3cret-imap-pass" not in page.content

    data = {
        field: value
        for field, value in page.context["adminform"].form.initial.items()
        if value is not None and field != "password"
    }
    data.update(
        {
            "password": "",
            "name": "Support desk",
            "department": "",
            "help_topic": "",
            "priority": "",
            "port": "",
        }
    )
    response = client.post(url, data)
    assert response.status_code == 302, response.content[:2000]
    mailbox.refresh_from_db()
    assert mailbox.name == "Support desk"
    assert mailbox.password == "s3cret-imap-pass"
