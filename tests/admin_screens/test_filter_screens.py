"""The filter screens: rules formset, regex validation, reorder, and the test box."""

import pytest
from django.urls import reverse

from helpdesk.models import AdminLogEntry
from routing.models import Filter, FilterRule, RuleField, RuleOperator
from tests.kb.factories import CannedResponseFactory
from tests.routing.factories import DepartmentFactory, FilterFactory
from tests.tickets.factories import priority
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


def _rules(*rows, existing=0) -> dict:
    data = {
        "rules-TOTAL_FORMS": str(len(rows)),
        "rules-INITIAL_FORMS": str(existing),
        "rules-MIN_NUM_FORMS": "0",
        "rules-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"rules-{i}-{key}"] = value
    return data


def _filter(name="VIP", **fields) -> dict:
    return {"name": name, "channel": "any", "match": "all", **fields}


def test_an_admin_creates_a_filter_with_rules_and_actions(admin_client, department):
    sales = DepartmentFactory(name="Sales")
    response = admin_client.post(
        reverse("staff_admin:filter_create"),
        {
            **_filter(department=sales.pk, priority=priority("High").pk, stop_on_match="on"),
            **_rules(
                {"field": "sender_email", "operator": "ends_with", "value": "@vip.example"},
                {"field": "header", "header": "X-Tier", "operator": "equals", "value": "gold"},
                {"field": "", "operator": "", "value": ""},  # an empty extra row
            ),
        },
    )
    assert response.status_code == 302
    filter_ = Filter.objects.get(name="VIP")
    assert filter_.department == sales
    assert filter_.stop_on_match
    assert sorted(str(rule) for rule in filter_.rules.all()) == [
        "Sender's email ends with '@vip.example'",
        "X-Tier equals 'gold'",
    ]
    entry = AdminLogEntry.objects.get(object_type="routing.filter")
    assert entry.action == "create"
    assert entry.changes["department"] == [None, "Sales"]
    assert entry.changes["rules"][1] == [
        "Sender's email ends with '@vip.example'",
        "X-Tier equals 'gold'",
    ]


def test_an_invalid_regex_is_refused_with_a_field_error(admin_client):
    response = admin_client.post(
        reverse("staff_admin:filter_create"),
        {**_filter(), **_rules({"field": "subject", "operator": "matches", "value": "(unclosed"})},
    )
    assert response.status_code == 200
    errors = response.context["rules"].forms[0].errors
    assert "This is not a valid regular expression" in errors["value"][0]
    assert not Filter.objects.exists()


def test_a_header_rule_needs_the_header_name(admin_client):
    response = admin_client.post(
        reverse("staff_admin:filter_create"),
        {**_filter(), **_rules({"field": "header", "operator": "equals", "value": "x"})},
    )
    assert response.context["rules"].forms[0].errors["header"] == ["Name the header to look at."]


def test_a_rejecting_filter_takes_no_other_action(admin_client, department):
    response = admin_client.post(
        reverse("staff_admin:filter_create"),
        {
            **_filter(reject="on", department=department.pk),
            **_rules({"field": "subject", "operator": "contains", "value": "x"}),
        },
    )
    assert "A filter that rejects takes no other action." in response.content.decode()


def test_editing_rules_logs_them_before_and_after(admin_client):
    filter_ = FilterFactory(
        name="Spam", rules=[(RuleField.SUBJECT, RuleOperator.CONTAINS, "viagra")]
    )
    rule = filter_.rules.get()
    admin_client.post(
        reverse("staff_admin:filter_edit", args=[filter_.pk]),
        {
            **_filter(name="Spam", reject="on"),
            **_rules(
                {"id": rule.pk, "field": "subject", "operator": "contains", "value": "casino"},
                {"field": "body", "operator": "matches", "value": r"\bfree\b"},
                existing=1,
            ),
        },
    )
    assert sorted(FilterRule.objects.values_list("value", flat=True)) == [r"\bfree\b", "casino"]
    entry = AdminLogEntry.objects.get(action="update")
    assert entry.changes["reject"] == [False, True]
    assert entry.changes["rules"] == [
        ["Subject contains 'viagra'"],
        ["Body matches regex '\\\\bfree\\\\b'", "Subject contains 'casino'"],
    ]


def test_a_rule_is_removed(admin_client):
    filter_ = FilterFactory(
        name="Two",
        rules=[
            (RuleField.SUBJECT, RuleOperator.CONTAINS, "a"),
            (RuleField.BODY, RuleOperator.CONTAINS, "b"),
        ],
    )
    first, second = filter_.rules.order_by("pk")
    admin_client.post(
        reverse("staff_admin:filter_edit", args=[filter_.pk]),
        {
            **_filter(name="Two"),
            **_rules(
                {"id": first.pk, "field": "subject", "operator": "contains", "value": "a"},
                {
                    "id": second.pk,
                    "field": "body",
                    "operator": "contains",
                    "value": "b",
                    "DELETE": "on",
                },
                existing=2,
            ),
        },
    )
    assert list(filter_.rules.values_list("value", flat=True)) == ["a"]


def test_filters_are_reordered(admin_client):
    _one, two = FilterFactory(name="One"), FilterFactory(name="Two")
    admin_client.post(reverse("staff_admin:filter_move", args=[two.pk]), {"direction": "up"})
    assert list(Filter.objects.values_list("name", flat=True)) == ["Two", "One"]
    page = admin_client.get(reverse("staff_admin:filter_list")).content.decode()
    assert page.index("Two") < page.index("One")


def test_a_filter_is_archived(admin_client):
    filter_ = FilterFactory(name="Old")
    admin_client.post(reverse("staff_admin:filter_archive", args=[filter_.pk]))
    filter_.refresh_from_db()
    assert not filter_.is_active


def _test(client, **data):
    return client.post(reverse("staff_admin:filter_test"), {"source": "email", **data})


def test_the_test_box_shows_the_matching_filter_and_what_it_would_do(admin_client):
    sales = DepartmentFactory(name="Sales")
    FilterFactory(
        name="Route VIPs",
        department=sales,
        priority=priority("Emergency"),
        disable_auto_response=True,
        rules=[(RuleField.SENDER_EMAIL, RuleOperator.ENDS_WITH, "@vip.example")],
    )
    FilterFactory(name="Never", rules=[(RuleField.SUBJECT, RuleOperator.CONTAINS, "zzz")])
    response = _test(admin_client, sender_email="boss@VIP.example", subject="Hello")
    assert response.status_code == 200
    result = response.context["result"]
    assert result.matched == ["Route VIPs"]
    assert result.department == sales
    page = response.content.decode()
    assert "Matching filters, in order:" in page
    assert "Sales" in page and "Emergency" in page
    assert {f.name: m for f, m in response.context["rows"]} == {
        "Route VIPs": True,
        "Never": False,
    }
    assert not Ticket.objects.exists()  # a test opens no ticket


def test_the_test_box_reads_a_pasted_message(admin_client):
    FilterFactory(
        name="Reject newsletters",
        reject=True,
        rules=[(RuleField.HEADER, RuleOperator.EQUALS, "bulk", "Precedence")],
    )
    FilterFactory(name="Later", rules=[(RuleField.SUBJECT, RuleOperator.CONTAINS, "news")])
    raw = (
        "From: News <news@letters.example>\r\n"
        "To: help@example.com\r\n"
        "Subject: Our news\r\n"
        "Precedence: bulk\r\n"
        "\r\n"
        "Read all about it.\r\n"
    )
    response = _test(admin_client, raw=raw)
    assert response.context["result"].rejected_by == "Reject newsletters"
    assert "Rejected by “Reject newsletters”" in response.content.decode()
    rows = {f.name: m for f, m in response.context["rows"]}
    assert rows == {"Reject newsletters": True, "Later": None}


def test_the_test_box_reports_no_match(admin_client):
    FilterFactory(name="Never", rules=[(RuleField.SUBJECT, RuleOperator.CONTAINS, "zzz")])
    response = _test(admin_client, subject="Hello", body="Hi")
    assert "No filter matches" in response.content.decode()


def test_the_test_box_needs_something_to_test(admin_client):
    response = _test(admin_client)
    assert "Paste a message or fill in some of its fields." in response.content.decode()
    assert response.context["result"] is None


def test_the_test_box_escapes_what_it_shows(admin_client):
    FilterFactory(
        name="<img src=x onerror=alert(1)>",
        rules=[(RuleField.SUBJECT, RuleOperator.CONTAINS, "x")],
    )
    page = _test(admin_client, subject="x", sender_name="<script>bad()</script>").content.decode()
    assert "<img src=x onerror" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script>bad()" not in page


def test_a_filter_sends_a_canned_reply_chosen_among_active_ones(admin_client):
    welcome = CannedResponseFactory(title="Welcome", department=DepartmentFactory(name="Sales"))
    CannedResponseFactory(title="Old welcome", is_active=False)
    page = admin_client.get(reverse("staff_admin:filter_create"))
    offered = [label for _pk, label in page.context["form"].fields["canned_response"].choices]
    assert offered[1:] == ["Welcome (Sales)"]
    response = admin_client.post(
        reverse("staff_admin:filter_create"),
        {
            **_filter(canned_response=welcome.pk),
            **_rules({"field": "subject", "operator": "contains", "value": "hello"}),
        },
    )
    assert response.status_code == 302
    assert Filter.objects.get(name="VIP").canned_response == welcome
    listing = admin_client.get(reverse("staff_admin:filter_list")).content.decode()
    assert "Canned reply: Welcome." in listing


def test_a_rejecting_filter_cannot_send_a_canned_reply(admin_client):
    response = admin_client.post(
        reverse("staff_admin:filter_create"),
        {
            **_filter(reject="on", canned_response=CannedResponseFactory().pk),
            **_rules({"field": "subject", "operator": "contains", "value": "x"}),
        },
    )
    assert response.status_code == 200
    assert "A filter that rejects takes no other action." in response.content.decode()
    assert not Filter.objects.exists()


def test_the_test_box_shows_the_canned_reply_it_would_send(admin_client):
    canned = CannedResponseFactory(title="Printer <b>help</b>")
    FilterFactory(
        name="Printers",
        canned_response=canned,
        rules=[(RuleField.SUBJECT, RuleOperator.CONTAINS, "printer")],
    )
    response = _test(admin_client, sender_email="casey@example.com", subject="Printer jam")
    assert response.context["result"].canned_response_id == canned.pk
    page = response.content.decode()
    assert "would send canned reply “Printer &lt;b&gt;help&lt;/b&gt;”" in page
    assert "(Printers)" in page
    canned.is_active = False
    canned.save(update_fields=["is_active"])
    page = _test(admin_client, subject="Printer jam").content.decode()
    assert "is archived: no canned reply would be sent" in page
    assert not Ticket.objects.exists()
