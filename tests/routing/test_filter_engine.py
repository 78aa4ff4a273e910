"""The filter engine on its own: rules, operators, order and safety. Filters here live in
memory only; the engine reads no rows."""

import time

import pytest
from django.core.exceptions import ValidationError

from routing.filters import BODY_LIMIT, FIELD_LIMIT, filters_apply
from routing.models import (
    RULE_VALUE_MAX,
    Filter,
    FilterChannel,
    FilterMatch,
    FilterRule,
    HelpTopic,
    RuleField,
    RuleOperator,
)
from tickets.models import Source
from tickets.services import TicketDraft

Op = RuleOperator
F = RuleField


def draft(**fields):
    fields.setdefault("subject", "Printer on fire")
    fields.setdefault("body", "It is on fire.")
    fields.setdefault("email", "casey@example.com")
    fields.setdefault("name", "Casey Jones")
    return TicketDraft(**fields)


def a_filter(*rules, name="Filter", **fields):
    """An unsaved filter whose rules are (field, operator, value[, header])."""
    filter_ = Filter(name=name, **fields)
    filter_.loaded_rules = [
        FilterRule(field=field, operator=operator, value=value, header="".join(header))
        for field, operator, value, *header in rules
    ]
    return filter_


def matches(rule, the_draft=None, **draft_fields):
    result = filters_apply(the_draft or draft(**draft_fields), [a_filter(rule)])
    return result.matched == ["Filter"]


class TestOperators:
    @pytest.mark.parametrize(
        ("operator", "value", "expected"),
        [
            (Op.EQUALS, "printer on fire", True),
            (Op.EQUALS, "PRINTER ON FIRE", True),
            (Op.EQUALS, "printer", False),
            (Op.NOT_EQUALS, "printer", True),
            (Op.NOT_EQUALS, "Printer On Fire", False),
            (Op.CONTAINS, "ON FI", True),
            (Op.CONTAINS, "smoke", False),
            (Op.NOT_CONTAINS, "smoke", True),
            (Op.NOT_CONTAINS, "FIRE", False),
            (Op.STARTS_WITH, "PRINT", True),
            (Op.STARTS_WITH, "fire", False),
            (Op.ENDS_WITH, "FIRE", True),
            (Op.ENDS_WITH, "printer", False),
            (Op.MATCHES, r"^printer\s+on", True),
            (Op.MATCHES, r"^on fire", False),
            (Op.NOT_MATCHES, r"smoke|flames", True),
            (Op.NOT_MATCHES, r"f[i1]re$", False),
        ],
    )
    def test_each_operator_ignores_case(self, operator, value, expected):
        assert matches((F.SUBJECT, operator, value)) is expected

    @pytest.mark.parametrize(
        ("operator", "value"),
        [
            (Op.EQUALS, "GRÜSSE AUS DER STRASSE"),  # ß folds to ss, ü to Ü
            (Op.CONTAINS, "strasse"),
            (Op.STARTS_WITH, "grüsse"),
            (Op.ENDS_WITH, "STRAẞE"),
            (Op.MATCHES, r"stra(ss|ß)e$"),
            (Op.MATCHES, r"^GRÜ"),
        ],
    )
    def test_unicode_text_matches_whatever_its_case(self, operator, value):
        assert matches((F.SUBJECT, operator, value), subject="Grüße aus der Straße")

    def test_composed_and_decomposed_accents_are_the_same_letter(self):
        decomposed = "cafe\u0301"  # e + combining acute accent
        assert matches((F.SUBJECT, Op.EQUALS, "CAFÉ"), subject=decomposed)
        assert matches((F.SUBJECT, Op.MATCHES, "^café$"), subject=decomposed)

    def test_greek_and_cyrillic_fold_too(self):
        assert matches((F.SENDER_NAME, Op.EQUALS, "ΟΔΥΣΣΕΥΣ"), name="οδυσσευς")
        assert matches((F.BODY, Op.CONTAINS, "ПРИНТЕР"), body="Мой принтер горит")


class TestFields:
    def test_sender_email_and_name_come_from_the_draft_or_its_user(self, db):
        from tests.accounts.factories import UserFactory

        user = UserFactory(email="pat@partner.example", name="Pat Partner")
        assert matches((F.SENDER_EMAIL, Op.ENDS_WITH, "@PARTNER.example"), user=user, email="")
        assert matches((F.SENDER_NAME, Op.STARTS_WITH, "pat"), user=user, name="")
        assert matches((F.SENDER_EMAIL, Op.EQUALS, "casey@example.com"))

    def test_to_and_cc_match_when_any_address_does(self):
        addresses = {"to": ["sales@ours.example", "Info@Ours.example"], "cc": ["boss@x.example"]}
        assert matches((F.TO, Op.EQUALS, "info@ours.example"), **addresses)
        assert matches((F.CC, Op.STARTS_WITH, "boss@"), **addresses)
        assert not matches((F.TO, Op.EQUALS, "boss@x.example"), **addresses)

    def test_negative_operators_on_addresses_hold_only_when_no_address_matches(self):
        addresses = {"to": ["sales@ours.example", "info@ours.example"]}
        assert not matches((F.TO, Op.NOT_EQUALS, "info@ours.example"), **addresses)
        assert matches((F.TO, Op.NOT_CONTAINS, "support@"), **addresses)

    def test_reply_to_and_body(self):
        assert matches((F.REPLY_TO, Op.CONTAINS, "noreply"), reply_to="NoReply@shop.example")
        assert matches((F.BODY, Op.MATCHES, r"order\s+#\d{5}"), body="About order #12345, hi")

    def test_any_header_by_name_whatever_the_case_of_the_name(self):
        headers = {"X-Spam-Flag": "YES", "Received": ["from a", "from relay.bad.example"]}
        assert matches((F.HEADER, Op.EQUALS, "yes", "x-spam-flag"), headers=headers)
        assert matches((F.HEADER, Op.CONTAINS, "bad.example", "RECEIVED"), headers=headers)
        assert not matches((F.HEADER, Op.EQUALS, "yes", "X-Other"), headers=headers)

    def test_a_missing_header_is_empty(self):
        assert matches((F.HEADER, Op.NOT_CONTAINS, "yes", "X-Spam-Flag"))
        assert not matches((F.HEADER, Op.CONTAINS, "yes", "X-Spam-Flag"))

    def test_help_topic_is_matched_by_its_full_name(self):
        parent = HelpTopic(name="Billing")
        topic = HelpTopic(name="Refunds", parent=parent)
        assert matches((F.HELP_TOPIC, Op.EQUALS, "billing / refunds"), help_topic=topic)
        assert not matches((F.HELP_TOPIC, Op.EQUALS, "billing"), help_topic=topic)

    def test_organization_is_given_by_the_caller(self):
        rule = a_filter((F.ORGANIZATION, Op.EQUALS, "ACME Corp"))
        assert filters_apply(draft(), [rule], organization="Acme Corp").matched == ["Filter"]
        assert filters_apply(draft(), [rule]).matched == []


class TestMatchingAndOrder:
    def test_match_all_needs_every_rule(self):
        rules = [(F.SUBJECT, Op.CONTAINS, "printer"), (F.BODY, Op.CONTAINS, "smoke")]
        assert filters_apply(draft(), [a_filter(*rules, match=FilterMatch.ALL)]).matched == []
        assert filters_apply(draft(), [a_filter(*rules, match=FilterMatch.ANY)]).matched == [
            "Filter"
        ]

    def test_a_filter_without_rules_never_matches(self):
        assert filters_apply(draft(), [a_filter()]).matched == []

    def test_inactive_filters_are_skipped(self):
        rule = (F.SUBJECT, Op.CONTAINS, "printer")
        assert filters_apply(draft(), [a_filter(rule, is_active=False)]).matched == []

    def test_filters_run_in_order_and_a_later_one_overrides_an_earlier_action(self):
        from routing.models import Department

        first, second = Department(pk=1, name="First"), Department(pk=2, name="Second")
        rule = (F.SUBJECT, Op.CONTAINS, "printer")
        result = filters_apply(
            draft(),
            [
                a_filter(rule, name="A", department=first),
                a_filter(rule, name="B", department=second),
            ],
        )
        assert result.matched == ["A", "B"]
        assert result.department == second and result.set_by["department"] == "B"

    def test_stop_on_match_ends_the_run(self):
        rule = (F.SUBJECT, Op.CONTAINS, "printer")
        filters = [
            a_filter((F.SUBJECT, Op.CONTAINS, "nothing"), name="A", stop_on_match=True),
            a_filter(rule, name="B", stop_on_match=True),
            a_filter(rule, name="C"),
        ]
        assert filters_apply(draft(), filters).matched == ["B"]

    def test_reject_stops_at_once(self):
        rule = (F.SUBJECT, Op.CONTAINS, "printer")
        filters = [a_filter(rule, name="Spam", reject=True), a_filter(rule, name="Later")]
        result = filters_apply(draft(), filters)
        assert result.rejected_by == "Spam" and result.matched == ["Spam"]

    @pytest.mark.parametrize(
        ("channel", "source", "expected"),
        [
            (FilterChannel.ANY, Source.PHONE, True),
            (FilterChannel.EMAIL, Source.EMAIL, True),
            (FilterChannel.EMAIL, Source.WEB, False),
            (FilterChannel.WEB, Source.WEB, True),
            (FilterChannel.API, Source.API, True),
            (FilterChannel.PHONE, Source.API, False),
        ],
    )
    def test_a_filter_applies_to_its_channel_only(self, channel, source, expected):
        filter_ = a_filter((F.SUBJECT, Op.CONTAINS, "printer"), channel=channel)
        assert (filters_apply(draft(source=source), [filter_]).matched == ["Filter"]) is expected

    def test_the_engine_leaves_the_draft_alone_and_reads_nothing(
        self, django_assert_num_queries, db
    ):
        the_draft = draft()
        from routing.models import Department

        filter_ = a_filter((F.SUBJECT, Op.CONTAINS, "printer"), department=Department(pk=9))
        with django_assert_num_queries(0):
            result = filters_apply(the_draft, [filter_])
        assert result.department.pk == 9
        assert the_draft.department is None


class TestRegexSafety:
    @pytest.mark.parametrize("pattern", ["(unclosed", "[z-a]", "*starts", "a{2,1}"])
    def test_an_invalid_pattern_is_refused_when_saved(self, pattern):
        rule = FilterRule(field=F.SUBJECT, operator=Op.MATCHES, value=pattern)
        with pytest.raises(ValidationError) as error:
            rule.clean()
        assert "not a valid regular expression" in error.value.message_dict["value"][0]

    def test_plain_operators_take_any_text(self):
        FilterRule(field=F.SUBJECT, operator=Op.CONTAINS, value="(unclosed").clean()

    def test_a_value_too_long_is_refused(self):
        rule = FilterRule(field=F.SUBJECT, operator=Op.MATCHES, value="a" * (RULE_VALUE_MAX + 1))
        with pytest.raises(ValidationError) as error:
            rule.clean()
        assert "value" in error.value.message_dict

    def test_a_header_rule_needs_the_header_name(self):
        with pytest.raises(ValidationError) as error:
            FilterRule(field=F.HEADER, operator=Op.EQUALS, value="x").clean()
        assert "header" in error.value.message_dict

    def test_a_catastrophic_pattern_cannot_stall_ingestion(self):
        evil = a_filter((F.BODY, Op.MATCHES, r"^(a+)+$"), name="Evil")
        fine = a_filter((F.SUBJECT, Op.CONTAINS, "printer"), name="Fine")
        started = time.monotonic()
        result = filters_apply(draft(body="a" * 5000 + "!"), [evil, fine])
        assert time.monotonic() - started < 2
        assert result.matched == ["Fine"]
        assert result.timeouts == ["Evil: Body matches regex '^(a+)+$'"]

    def test_a_timed_out_negative_pattern_does_not_match_either(self):
        evil = a_filter((F.BODY, Op.NOT_MATCHES, r"^(a|aa)+$"))
        assert filters_apply(draft(body="a" * 5000 + "!"), [evil]).matched == []

    def test_only_the_first_64_kb_of_the_body_are_looked_at(self):
        body = "x" * BODY_LIMIT + " needle"
        assert not matches((F.BODY, Op.CONTAINS, "needle"), body=body)
        assert matches((F.BODY, Op.CONTAINS, "needle"), body="x" * (BODY_LIMIT - 7) + "needle")

    def test_other_fields_are_cut_at_8_kb(self):
        name = "x" * FIELD_LIMIT + "needle"
        assert not matches((F.SENDER_NAME, Op.CONTAINS, "needle"), name=name)
        headers = {"X-Long": "y" * FIELD_LIMIT + "needle"}
        assert not matches((F.HEADER, Op.CONTAINS, "needle", "X-Long"), headers=headers)
