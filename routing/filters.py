"""The filter engine: a pure function from a new ticket's draft and the loaded filters to what
the filters decide. It reads no rows and writes none; `routing.services` loads the filters
and applies the result.

Safety against a hostile sender: every rule sees at most the first 64 KB of the body and
8 KB of any other field, and regular expressions run through the `regex` package with a time
limit per match (the standard `re` cannot be interrupted). A rule whose pattern runs out of
time counts as not matching (for "matches" and "does not match" alike) and is reported in
`FilterResult.timeouts`, so a pathological pattern costs at most a few milliseconds per mail.

Comparisons are Unicode-aware and ignore case: both sides are NFKC-normalised and
case-folded (``"STRASSE"`` equals ``"straße"``); patterns run with IGNORECASE and FULLCASE.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import regex
from django.core.exceptions import PermissionDenied

from .models import FilterChannel, FilterMatch, RuleField, RuleOperator

if TYPE_CHECKING:
    from accounts.models import User
    from sla.models import SLAPlan
    from tickets.models import Priority, TicketStatus
    from tickets.services import TicketDraft

    from .models import CtiItem, Department, Filter, FilterRule, HelpTopic, Team

logger = logging.getLogger(__name__)

BODY_LIMIT = 64 * 1024
FIELD_LIMIT = 8 * 1024
REGEX_TIMEOUT = 0.05  # seconds per match
REGEX_FLAGS = regex.IGNORECASE | regex.FULLCASE | regex.VERSION0

NEGATIVE = {
    RuleOperator.NOT_EQUALS: RuleOperator.EQUALS,
    RuleOperator.NOT_CONTAINS: RuleOperator.CONTAINS,
    RuleOperator.NOT_MATCHES: RuleOperator.MATCHES,
}


class DraftRejected(PermissionDenied):
    """A filter rejects the draft: no ticket, no reply. `ticket_open` raises it before it
    writes anything; the mail gateway records it on the stored raw message. It is a
    `PermissionDenied`, so a web or API view that does not catch it answers 403, not 500."""

    def __init__(self, filter_name: str) -> None:
        super().__init__(f"Rejected by filter {filter_name!r}")
        self.filter_name = filter_name


class RegexTimeout(Exception):
    pass


@dataclass
class FilterResult:
    """What the matching filters decided; None means "not set by any filter". When several
    matching filters set the same action, the later one wins (as in osTicket)."""

    matched: list[str] = field(default_factory=list)  # filter names, in order
    rejected_by: str | None = None
    department: Department | None = None
    priority: Priority | None = None
    status: TicketStatus | None = None
    help_topic: HelpTopic | None = None
    cti_item: CtiItem | None = None
    assignee: User | None = None
    team: Team | None = None
    sla: SLAPlan | None = None
    collaborators: list[str] = field(default_factory=list)
    auto_respond: bool = True
    # The canned response to answer with, by id only: the engine reads no row, and
    # `ticket_open` loads, renders and posts it (in place of the auto-response).
    canned_response_id: int | None = None
    # Which filter set each action, for the audit event ("assigned by filter X").
    set_by: dict[str, str] = field(default_factory=dict)
    timeouts: list[str] = field(default_factory=list)  # "filter: rule" whose regex timed out


def regex_error(pattern: str) -> str:
    """Why `pattern` is not a usable regular expression, or "" when it is."""
    try:
        regex.compile(pattern, REGEX_FLAGS)
    except (regex.error, OverflowError, RecursionError, ValueError) as error:
        return str(error)
    return ""


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _bounded(value: object, limit: int = FIELD_LIMIT) -> str:
    return str(value or "")[:limit]


def draft_values(draft: TicketDraft, *, organization: str = "") -> dict[str, list[str]]:
    """The draft's text per rule field, bounded. List fields (To, Cc) hold one value per
    address. Headers are keyed "header:<lower-case name>"."""
    user = draft.user
    sender_email = draft.email or (user.email if user is not None else "")
    sender_name = draft.name or (user.name if user is not None else "")
    values: dict[str, list[str]] = {
        RuleField.SENDER_EMAIL: [_bounded(sender_email)],
        RuleField.SENDER_NAME: [_bounded(sender_name)],
        RuleField.TO: [_bounded(a) for a in list(getattr(draft, "to", []) or [])[:100]],
        RuleField.CC: [_bounded(a) for a in list(getattr(draft, "cc", []) or [])[:100]],
        RuleField.REPLY_TO: [_bounded(getattr(draft, "reply_to", ""))],
        RuleField.SUBJECT: [_bounded(draft.subject)],
        RuleField.BODY: [_bounded(draft.body, BODY_LIMIT)],
        RuleField.HELP_TOPIC: [
            _bounded(draft.help_topic.full_name if draft.help_topic is not None else "")
        ],
        RuleField.ORGANIZATION: [_bounded(organization)],
    }
    for name, value in list((draft.headers or {}).items())[:200]:
        items = value if isinstance(value, list | tuple) else [value]
        key = f"header:{str(name).strip().lower()}"
        values.setdefault(key, []).extend(_bounded(item) for item in items[:20])
    return values


def _compare(operator: str, text: str, value: str) -> bool:
    """One positive operator over one text."""
    if operator == RuleOperator.MATCHES:
        try:
            text = unicodedata.normalize("NFC", text)
            return regex.search(value, text, REGEX_FLAGS, timeout=REGEX_TIMEOUT) is not None
        except TimeoutError:
            raise RegexTimeout from None
        except (regex.error, OverflowError, RecursionError, ValueError):
            return False  # a pattern saved before validation existed: it never matches
    text, value = _fold(text), _fold(value)
    if operator == RuleOperator.EQUALS:
        return text == value
    if operator == RuleOperator.CONTAINS:
        return value in text
    if operator == RuleOperator.STARTS_WITH:
        return text.startswith(value)
    if operator == RuleOperator.ENDS_WITH:
        return text.endswith(value)
    raise ValueError(f"Unknown operator {operator!r}")


def rule_matches(rule: FilterRule, values: dict[str, list[str]]) -> bool:
    """Does one rule hold? Positive operators hold when any value of the field satisfies
    them; negative ones when none does. A missing header is an empty value. A regex that
    runs out of time raises `RegexTimeout`."""
    key = f"header:{rule.header.strip().lower()}" if rule.field == RuleField.HEADER else rule.field
    texts = values.get(key) or [""]
    positive = NEGATIVE.get(rule.operator, rule.operator)
    hit = any(_compare(positive, text, rule.value) for text in texts)
    return not hit if rule.operator in NEGATIVE else hit


def _rules(filter_: Filter) -> Sequence[FilterRule]:
    loaded = filter_.__dict__.get("loaded_rules")
    return loaded if loaded is not None else list(filter_.rules.all())


def filter_matches(
    filter_: Filter, draft: TicketDraft, values: dict[str, list[str]], result: FilterResult
) -> bool:
    if filter_.channel != FilterChannel.ANY and filter_.channel != draft.source:
        return False
    rules = _rules(filter_)
    if not rules:
        return False  # a filter without rules never matches
    outcomes = []
    for rule in rules:
        try:
            outcomes.append(rule_matches(rule, values))
        except RegexTimeout:
            result.timeouts.append(f"{filter_.name}: {rule}")
            logger.warning("Filter %r: the pattern %r timed out", filter_.name, rule.value)
            outcomes.append(False)
        if filter_.match == FilterMatch.ANY and outcomes[-1]:
            return True
        if filter_.match == FilterMatch.ALL and not outcomes[-1]:
            return False
    return all(outcomes) if filter_.match == FilterMatch.ALL else any(outcomes)


def _apply_actions(filter_: Filter, result: FilterResult) -> None:
    for name in ("department", "priority", "status", "help_topic", "cti_item", "team", "sla"):
        if getattr(filter_, f"{name}_id") is not None:
            setattr(result, name, getattr(filter_, name))
            result.set_by[name] = filter_.name
    if filter_.assignee_id is not None:
        result.assignee = filter_.assignee
        result.set_by["assignee"] = filter_.name
    if filter_.collaborator_email and filter_.collaborator_email not in result.collaborators:
        result.collaborators.append(filter_.collaborator_email)
    if filter_.disable_auto_response:
        result.auto_respond = False
        result.set_by["auto_respond"] = filter_.name
    if filter_.canned_response_id is not None:
        result.canned_response_id = filter_.canned_response_id
        result.set_by["canned_response"] = filter_.name


def filters_apply(
    draft: TicketDraft, filters: Iterable[Filter], *, organization: str = ""
) -> FilterResult:
    """Run `filters` (active ones, in order, rules loaded) over `draft`. Pure: the draft is
    not changed and nothing is read from or written to the database."""
    result = FilterResult()
    values = draft_values(draft, organization=organization)
    for filter_ in filters:
        if not filter_.is_active or not filter_matches(filter_, draft, values, result):
            continue
        result.matched.append(filter_.name)
        if filter_.reject:
            result.rejected_by = filter_.name
            return result
        _apply_actions(filter_, result)
        if filter_.stop_on_match:
            break
    return result


def result_summary(result: FilterResult) -> dict[str, Any]:
    """The part of a result worth recording on the ticket's creation event."""
    summary: dict[str, Any] = {"filters": result.matched}
    if result.timeouts:
        summary["filter_timeouts"] = result.timeouts
    return summary
