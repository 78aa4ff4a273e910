"""The staff ticket page (/scp/tickets/<number>/) and its actions.

The page is one template (`tickets/staff/ticket.html`) around one fragment
(`_partials/ticket_main.html`, the element `#ticket`). Every action is a POST form that works
without JavaScript (redirect with a message on success, the page re-rendered with the bound
form and status 400 on error); with htmx the same forms swap `#ticket` with the fragment
(status 422 for form errors, which `static/js/helpdesk.js` swaps in too).

The page runs a fixed number of queries whatever the thread's length (see
`tickets.selectors`): the events are loaded only when the agent opens the audit trail.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from html.parser import HTMLParser

from csp.decorators import csp_update
from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import get_template
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_GET, require_POST

from accounts import permissions
from accounts.decorators import agent_required
from accounts.models import User
from helpdesk.config import config
from helpdesk.lib import querycache
from helpdesk.lib.fragments import fragment
from helpdesk.lib.sanitize import render_body, render_markdown, render_text

from .. import forms as ticket_forms
from ..models import Attachment, BodyFormat, Source, StatusState, ThreadEntry, ThreadEvent, Ticket
from ..related import related_tokens
from ..selectors import (
    TicketActionOptions,
    action_options_token,
    entry_bodies_load,
    ticket_action_options,
    ticket_events,
    ticket_get_for_page,
    ticket_list_other_for_customer,
    ticket_people,
    ticket_thread_for_page,
)
from ..services import (
    ticket_assign,
    ticket_claim,
    ticket_collaborator_add,
    ticket_collaborator_remove,
    ticket_cti_set,
    ticket_due_override_set,
    ticket_help_topic_set,
    ticket_note_add,
    ticket_priority_set,
    ticket_release,
    ticket_reply,
    ticket_sla_set,
    ticket_status_set,
    ticket_subject_edit,
    ticket_transfer,
)
from ..statuses import STATE_PERMISSIONS, TAKES_MESSAGES
from .attachments import attachment_is_image, attachment_url, staff_attachment

PAGE = "tickets/staff/ticket.html"
MAIN = "tickets/staff/_partials/ticket_main.html"

# Remote images in HTML mail are loaded only when an agent asks for them on one entry; the
# page's policy allows them so that the entry re-rendered with `remote_images=True` shows
# them. The sanitiser keeps every other image's address out of `src` until then.
REMOTE_IMAGES_CSP = {"img-src": ["https:", "http:"]}


# --- quoted text ----------------------------------------------------------------------------


class _QuoteFinder(HTMLParser):
    """Finds where the quoted part of sanitised HTML mail starts: the first <blockquote>,
    moved up to the highest enclosing element that still leaves something written above it
    (Gmail's quote wrapper with its "On ... wrote:" line, Apple Mail's nesting). Notes
    whether anything is written after that element: then the quote is part of an
    interleaved answer and is not folded."""

    VOID = frozenset({"br", "hr", "img", "wbr"})

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.line_starts = [0]
        for index, char in enumerate(html):
            if char == "\n":
                self.line_starts.append(index + 1)
        self.stack: list[tuple[str, int]] = []
        self.first_content: int | None = None
        self.split_at: int | None = None  # where the folded part starts
        self.outer: list[str] = []  # the elements the split point is inside of
        self.split_depth = 0  # stack depth of the folded element
        self.after_split = False  # the folded element has ended
        self.written_after = False  # something written after it

    def _offset(self) -> int:
        line, column = self.getpos()
        return self.line_starts[line - 1] + column

    def handle_starttag(self, tag: str, attrs: list) -> None:
        offset = self._offset()
        if tag == "blockquote" and self.split_at is None and self.first_content is not None:
            self._choose_split(offset)
        if tag == "img":
            self._content(offset)
        elif tag not in self.VOID:
            self.stack.append((tag, offset))

    def _choose_split(self, quote_start: int) -> None:
        # The highest level whose element starts after the first written content.
        level = len(self.stack)
        for index, (_tag, start) in enumerate(self.stack):
            if start > self.first_content:  # type: ignore[operator]
                level = index
                break
        self.split_at = self.stack[level][1] if level < len(self.stack) else quote_start
        self.outer = [tag for tag, _start in self.stack[:level]]
        self.split_depth = level

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index][0] == tag:
                del self.stack[index:]
                break
        if self.split_at is not None and len(self.stack) <= self.split_depth:
            self.after_split = True

    def handle_data(self, data: str) -> None:
        if data.strip():
            self._content(self._offset())

    def _content(self, offset: int) -> None:
        if self.first_content is None:
            self.first_content = offset
        if self.after_split:
            self.written_after = True


def _split_quoted_html(html: str) -> tuple[str, str]:
    finder = _QuoteFinder(html)
    finder.feed(html)
    finder.close()
    if finder.split_at is None or finder.written_after:
        return html, ""  # no quote, only a quote, or an answer written between quotes
    start, outer = finder.split_at, finder.outer
    before = html[:start] + "".join(f"</{tag}>" for tag in reversed(outer))
    quoted = "".join(f"<{tag}>" for tag in outer) + html[start:]
    return before, quoted


def entry_display(entry: ThreadEntry, *, remote_images: bool = False) -> tuple[SafeString, str]:
    """An entry's body as (written part, quoted part) of safe HTML; the quoted part of an
    emailed reply (the earlier conversation) is folded away on the page but kept. Only mail
    is split: what people type in the portal or the staff UI is shown as written.

    Plain-text mail is split by `mailgate.parsing.split_quoted`, HTML mail at its first
    <blockquote>. The split of an entry is computed once and cached (entries do not
    change; the key holds the entry's update time)."""
    if remote_images:
        html = str(render_body(entry.body, entry.body_format, remote_images=True))
    else:
        html = entry.body_html or str(render_body(entry.body, entry.body_format))
    if (
        entry.source != Source.EMAIL
        or entry.body_format == BodyFormat.MARKDOWN
        or (entry.body_format == BodyFormat.HTML and "<blockquote" not in html)
    ):
        parts: tuple[str, str] = (html, "")
    else:
        stamp = entry.updated_at.timestamp() if entry.updated_at else 0
        # "v1": the splitting rules; a change of them bumps it so no stale split is served.
        key = f"hd:entry-quote:v1:{entry.pk}:{stamp}:{int(remote_images)}"
        parts = cache.get(key)
        if parts is None:
            if entry.body_format == BodyFormat.HTML:
                parts = _split_quoted_html(html)
            else:
                from mailgate.parsing import split_quoted

                new, quoted = split_quoted(entry.body)
                parts = (str(render_text(new)), str(render_text(quoted))) if quoted else (html, "")
            cache.set(key, parts, 24 * 60 * 60)
    # Both parts are the sanitiser's output, cut at a tag boundary by _split_quoted_html or
    # rendered apart by render_text: nothing here comes from the user unsanitised.
    written, quoted = parts
    return mark_safe(written), (mark_safe(quoted) if quoted else "")  # noqa: S308


# --- the page -------------------------------------------------------------------------------


# Event details worth showing, in this order; ids and entry links are left out.
EVENT_DETAIL_LABELS = {
    "from": _lazy("From"),
    "to": _lazy("To"),
    "text": _lazy("Change"),
    "field": _lazy("Field"),
    "agent": _lazy("Agent"),
    "team": _lazy("Team"),
    "user": _lazy("User"),
    "status": _lazy("Status"),
    "department": _lazy("Department"),
    "priority": _lazy("Priority"),
    "help_topic": _lazy("Help topic"),
    "released": _lazy("Released"),
    "assigned": _lazy("Assigned"),
    "reason": _lazy("Reason"),
    "unassigned": _lazy("Left unassigned"),
    "comment": _lazy("Comment"),
    "recipients": _lazy("Recipients"),
    "filter": _lazy("Filter"),
    "canned_response": _lazy("Canned response"),
}


def event_rows(events: list[ThreadEvent]) -> list[ThreadEvent]:
    """The events with `details`: (label, text) pairs of what their JSON says."""
    for event in events:
        data = event.data if isinstance(event.data, dict) else {}
        details = []
        for key, label in EVENT_DETAIL_LABELS.items():
            value = data.get(key)
            if value in (None, "", [], {}):
                continue
            if isinstance(value, list):
                value = ", ".join(str(item) for item in value)
            details.append((label, str(value)))
        event.details = details
    return events


def _entry_files(entry: ThreadEntry) -> list[tuple[Attachment, bool, str]]:
    """(attachment, is a raster image, download address) for each file of the entry."""
    return [(a, attachment_is_image(a), attachment_url(a)) for a in entry.attachments.all()]


ENTRY_TEMPLATE = "tickets/staff/_partials/ticket_entry.html"
# Rendered entries are kept this long; a key names everything the HTML depends on, so an
# entry whose text, files, author or poster changed, or a reader in another language or
# time zone, gets its own.
ENTRY_CACHE_SECONDS = 24 * 60 * 60


def _entry_cache_key(ticket: Ticket, entry: ThreadEntry, *, remote: bool) -> str:
    parts = (
        ticket.number,
        entry.pk,
        entry.updated_at.isoformat(),
        entry.kind,
        entry.poster,
        entry.author.get_full_name() if entry.author else "",
        tuple((a.pk, a.name, a.size) for a, _image, _url in entry.files),
        remote,
        get_language(),
        timezone.get_current_timezone_name(),
    )
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()
    return f"helpdesk:staff-entry:{digest}"


def entries_render(ticket: Ticket, entries: list[ThreadEntry], *, remote_pk: str = "") -> None:
    """Set `entry.html` on each entry: its rendered article, from the cache when an
    identical one was rendered before (entries rarely change once written, and the thread
    is most of the ticket page's rendering)."""
    keys = {}
    for entry in entries:
        entry.files = _entry_files(entry)
        keys[entry.pk] = _entry_cache_key(ticket, entry, remote=remote_pk == str(entry.pk))
    cached = cache.get_many(list(keys.values()))
    # The page reads the thread without its texts: only the entries rendered now need them.
    entry_bodies_load(
        [e for e in entries if keys[e.pk] not in cached and "body" in e.get_deferred_fields()]
    )
    template = get_template(ENTRY_TEMPLATE)
    fresh = {}
    for entry in entries:
        html = cached.get(keys[entry.pk])
        if html is None:
            remote = remote_pk == str(entry.pk)
            entry.display_html, entry.quoted_html = entry_display(entry, remote_images=remote)
            entry.has_remote_images = not remote and "data-remote-src" in (
                entry.display_html + (entry.quoted_html or "")
            )
            html = template.render({"entry": entry, "ticket": ticket})
            fresh[keys[entry.pk]] = html
        entry.html = mark_safe(html)  # noqa: S308 - the entry template's own output
    if fresh:
        cache.set_many(fresh, ENTRY_CACHE_SECONDS)


def thread_html(ticket: Ticket, user: User, *, remote_pk: str = "") -> list[SafeString]:
    """The thread's entries as rendered articles. The page is for agents, who all read the
    same thread: it is kept in the query cache until the thread changes, for each language
    and time zone (an entry with its remote images shown is rendered anew)."""

    def render() -> list[str]:
        entries = ticket_thread_for_page(ticket=ticket, user=user, bodies=False)
        entries_render(ticket, entries, remote_pk=remote_pk)
        return [str(entry.html) for entry in entries]

    if remote_pk:
        articles = render()
    else:
        key = (ticket.pk, get_language(), timezone.get_current_timezone_name())
        scopes = [f"thread:{ticket.thread.pk}"]
        articles = querycache.remember_scoped("staff thread", key, render, scopes)
    # Each article is the entry template's own output (see entries_render).
    return [mark_safe(html) for html in articles]  # noqa: S308


def _abilities(user: User, ticket: Ticket) -> dict[str, bool]:
    """What the agent may do here, each answered by `accounts.permissions.can`."""
    takes_messages = ticket.status.state in TAKES_MESSAGES
    can_assign = permissions.can(user, "ticket.assign", ticket)
    can_reply = permissions.can(user, "ticket.reply", ticket)
    can_edit = permissions.can(user, "ticket.edit", ticket)
    states = {
        state: any(permissions.can(user, perm, ticket) for perm in perms)
        for state, perms in STATE_PERMISSIONS.items()
    }
    unassigned = ticket.assignee_id is None
    assigned = not unassigned or ticket.team_id is not None
    releases_own = ticket.assignee_id == user.pk
    return {
        "reply": can_reply and takes_messages,
        "note": permissions.is_agent(user),
        "assign": can_assign,
        "claim": unassigned and (can_assign or can_reply),
        "release": releases_own or (assigned and permissions.can(user, "ticket.release", ticket)),
        "release_others": assigned and permissions.can(user, "ticket.release", ticket),
        "transfer": permissions.can(user, "ticket.transfer", ticket)
        and ticket.status.state != StatusState.DELETED,
        "edit": can_edit,
        "due_override": ticket.closed_at is None
        and permissions.can(user, "ticket.due_override", ticket),
        "status": any(states.values()),
        "states": states,
        "takes_messages": takes_messages,
    }


def _forms(
    request: HttpRequest,
    ticket: Ticket,
    options: TicketActionOptions | None,
    bound: dict[str, Form] | None = None,
) -> dict[str, Form]:
    forms: dict[str, Form] = {
        "reply": ticket_forms.ReplyForm(options=options, **_reply_kwargs(ticket, options)),
        "note": ticket_forms.NoteForm(options=options),
        "assign": ticket_forms.AssignForm(options=options),
        "transfer": ticket_forms.TransferForm(options=options),
        "status": ticket_forms.StatusForm(options=options, initial={"status": ticket.status_id}),
        "priority": ticket_forms.PriorityForm(
            options=options, initial={"priority": ticket.priority_id}
        ),
        "topic": ticket_forms.TopicForm(
            options=options, initial={"help_topic": ticket.help_topic_id}
        ),
        "cti": ticket_forms.CtiForm(options=options, initial={"cti_item": ticket.cti_item_id}),
        "subject": ticket_forms.SubjectForm(initial={"subject": ticket.subject}),
        "sla": ticket_forms.SlaForm(options=options, initial={"sla": ticket.sla_id}),
        "due": ticket_forms.DueOverrideForm(
            initial={"due_at": timezone.localtime(ticket.due_override_at)}
            if ticket.due_override_at
            else {}
        ),
        "collab": ticket_forms.CollaboratorAddForm(),
    }
    for name, form in (bound or {}).items():
        if options is not None and isinstance(form, ticket_forms.TicketActionForm):
            form.set_choices(options)
        forms[name] = form
    return forms


def _reply_kwargs(ticket: Ticket, options: TicketActionOptions | None) -> dict[str, str]:
    return {
        "agent_signature": options.signature if options else "",
        "department_signature": ticket.department.signature,
    }


def _limit_statuses(options: TicketActionOptions, states: dict[str, bool]) -> None:
    """Offer only the statuses the agent may move the ticket into."""
    options.statuses = [
        (pk, name) for pk, name in options.statuses if states.get(options.status_states[pk])
    ]


def _page_context(
    request: HttpRequest,
    ticket: Ticket,
    *,
    bound: dict[str, Form] | None = None,
    preview: str | None = None,
) -> dict[str, object]:
    user = request.user
    can = _abilities(user, ticket)
    options = ticket_action_options(ticket=ticket, user=user)
    _limit_statuses(options, can["states"])
    thread = thread_html(ticket, user, remote_pk=request.GET.get("remote", ""))
    emails, collaborators = ticket_people(ticket=ticket)
    show_events = request.GET.get("history") == "1"
    return {
        "ticket": ticket,
        "nav_active": "tickets",
        "can": can,
        "thread": thread,
        "emails": emails,
        "collaborators": collaborators,
        "other_tickets": ticket_list_other_for_customer(ticket=ticket, user=user),
        "forms": _forms(request, ticket, options, bound),
        "help_topic_name": dict(options.help_topics).get(ticket.help_topic_id)
        or (ticket.help_topic.name if ticket.help_topic else ""),
        "department_name": dict(options.departments).get(ticket.department_id)
        or ticket.department.name,
        "events": event_rows(list(ticket_events(ticket=ticket))) if show_events else None,
        "preview": preview,
        "is_htmx": bool(request.htmx),
    }


def _render_page(
    request: HttpRequest,
    ticket: Ticket,
    *,
    bound: dict[str, Form] | None = None,
    status: int = 200,
    preview: str | None = None,
) -> HttpResponse:
    if request.method == "GET" and not request.htmx and not bound and preview is None:
        # A plain view of the page: its fragment comes from the query cache.
        context = {
            "ticket": ticket,
            "nav_active": "tickets",
            "main_html": _main_cached(request, ticket),
        }
        return render(request, PAGE, context, status=status)
    context = _page_context(request, ticket, bound=bound, preview=preview)
    template = MAIN if request.htmx else PAGE
    response = render(request, template, context, status=status)
    return response


def _main_cached(request: HttpRequest, ticket: Ticket) -> SafeString:
    """The `#ticket` fragment as this agent sees it (helpdesk.lib.fragments), kept until the
    ticket, its thread or its customer's tickets change. Its key names everything else it
    shows: what the agent may see and do (their visibility key), the action forms' options,
    the kept statuses, priorities, departments, help topics and SLA plans, the desk's
    settings and the GET parameters."""
    key = (
        ticket.pk,
        permissions.visibility_key(request.user),
        action_options_token(),
        related_tokens(),
        repr(config()),
        sorted(request.GET.lists()),
    )

    def render_main(extra: dict[str, object]) -> str:
        context = {**_page_context(request, ticket), **extra}
        return get_template(MAIN).render(context, request)

    scopes = [f"ticket:{ticket.pk}", f"thread:{ticket.thread.pk}", f"customer:{ticket.user_id}"]
    return fragment(request, "staff ticket main", key, render_main, scopes=scopes)


@csp_update(REMOTE_IMAGES_CSP)
@agent_required
@require_GET
def ticket_detail(request: HttpRequest, number: str) -> HttpResponse:
    ticket = ticket_get_for_page(user=request.user, number=number, cached=True)
    return _render_page(request, ticket)


# --- actions --------------------------------------------------------------------------------


def _errors_to_form(request: HttpRequest, form: Form, error: ValidationError) -> None:
    """A service's errors at the form's fields; errors about the ticket itself ("it takes
    no more messages", "already assigned to ...") as an error message at the top, which is
    seen even when the form that caused it is not shown any more."""
    fields = error.message_dict if hasattr(error, "error_dict") else {None: error.messages}
    for field, errors in fields.items():
        for message in errors:
            if field in form.fields:
                form.add_error(field, message)
            else:
                messages.error(request, message)


def _after_success(request: HttpRequest, number: str) -> HttpResponse:
    """Back to the page, freshly read; or to the queues when the agent no longer sees the
    ticket (transferred to a department they do not work in)."""
    try:
        ticket = ticket_get_for_page(user=request.user, number=number)
    except Http404:
        messages.info(request, _("You no longer have access to this ticket."))
        url = _queue_url()
        if request.htmx:
            response = HttpResponse(status=204)
            response["HX-Redirect"] = url
            return response
        return redirect(url)
    if request.htmx:
        return _render_page(request, ticket)
    return redirect("tickets_staff:ticket", number=ticket.number)


def _queue_url() -> str:
    try:
        return reverse("tickets_staff:queue_default")
    except NoReverseMatch:  # the queues are not installed
        return reverse("staff:home")


Perform = Callable[[Ticket, Form], str]


def _act(
    request: HttpRequest,
    number: str,
    name: str,
    form: Form,
    perform: Perform,
) -> HttpResponse:
    """Validate `form`, run `perform` (a service call returning the success message), then
    redirect (or swap) on success, or re-render the page with the errors next to the fields."""
    ticket = ticket_get_for_page(user=request.user, number=number)
    status = 422 if request.htmx else 400
    if form.is_valid():
        try:
            message = perform(ticket, form)
        except ValidationError as error:
            _errors_to_form(request, form, error)
        except PermissionDenied as error:
            messages.error(request, str(error) or _("You may not do this."))
            status = 403
        else:
            messages.success(request, message)
            return _after_success(request, number)
        # The service changed nothing (its transaction rolled back): show the stored ticket.
        ticket = ticket_get_for_page(user=request.user, number=number)
    return _render_page(request, ticket, bound={name: form}, status=status)


def _bind(request: HttpRequest, form_class: type[Form], **kwargs: object) -> Form:
    return form_class(request.POST, request.FILES, **kwargs)


@agent_required
@require_POST
def reply(request: HttpRequest, number: str) -> HttpResponse:
    ticket = ticket_get_for_page(user=request.user, number=number)
    options = ticket_action_options(ticket=ticket, user=request.user)
    form = _bind(request, ticket_forms.ReplyForm, **_reply_kwargs(ticket, options))

    def perform(ticket: Ticket, form: Form) -> str:
        try:
            uploads = ticket_forms.uploads(form.cleaned_data["attachments"])
        except ValidationError as error:
            raise ValidationError({"attachments": error.messages}) from error
        status = form.cleaned_data.get("status")
        ticket_reply(
            ticket=ticket,
            by=request.user,
            body=form.body_with_signature(),
            body_format=BodyFormat.MARKDOWN,
            attachments=uploads,
            status=status,
        )
        if status is not None and status.pk != ticket.status_id:
            return _("Reply sent; the ticket is now %(status)s.") % {"status": status.name}
        return _("Reply sent.")

    return _act(request, number, "reply", form, perform)


@agent_required
@require_POST
def note(request: HttpRequest, number: str) -> HttpResponse:
    def perform(ticket: Ticket, form: Form) -> str:
        try:
            uploads = ticket_forms.uploads(form.cleaned_data["attachments"])
        except ValidationError as error:
            raise ValidationError({"attachments": error.messages}) from error
        ticket_note_add(
            ticket=ticket,
            by=request.user,
            body=form.cleaned_data["body"],
            body_format=BodyFormat.MARKDOWN,
            attachments=uploads,
        )
        return _("Internal note added.")

    return _act(request, number, "note", _bind(request, ticket_forms.NoteForm), perform)


@agent_required
@require_POST
def preview(request: HttpRequest, number: str) -> HttpResponse:
    """The reply as the customer will see it (markdown through the one sanitiser)."""
    ticket = ticket_get_for_page(user=request.user, number=number)
    body = request.POST.get("reply-body", request.POST.get("body", ""))
    html = render_markdown(body[: ticket_forms.BODY_MAX])
    if request.htmx:
        return render(request, "tickets/staff/_partials/ticket_preview.html", {"preview": html})
    options = ticket_action_options(ticket=ticket, user=request.user)
    form = ticket_forms.ReplyForm(request.POST, **_reply_kwargs(ticket, options))
    return _render_page(request, ticket, bound={"reply": form}, preview=html)


@agent_required
@require_POST
def assign(request: HttpRequest, number: str) -> HttpResponse:
    def perform(ticket: Ticket, form: Form) -> str:
        data = form.cleaned_data
        ticket_assign(
            ticket=ticket,
            by=request.user,
            agent=data.get("agent"),
            team=data.get("team"),
            comment=data.get("comment", ""),
        )
        names = [str(x.get_full_name()) for x in [data.get("agent")] if x] + [
            str(x) for x in [data.get("team")] if x
        ]
        return _("Assigned to %(names)s.") % {"names": _(" and ").join(names)}

    return _act(request, number, "assign", _bind(request, ticket_forms.AssignForm), perform)


@agent_required
@require_POST
def claim(request: HttpRequest, number: str) -> HttpResponse:
    def perform(ticket: Ticket, form: Form) -> str:
        ticket_claim(ticket=ticket, by=request.user)
        return _("The ticket is yours.")

    return _act(request, number, "claim", Form(request.POST), perform)


@agent_required
@require_POST
def release(request: HttpRequest, number: str) -> HttpResponse:
    def perform(ticket: Ticket, form: Form) -> str:
        what = form.cleaned_data.get("what") or "agent"
        ticket_release(
            ticket=ticket,
            by=request.user,
            agent=what in ("agent", "both"),
            team=what in ("team", "both"),
        )
        return _("The ticket is unassigned.")

    return _act(request, number, "release", _bind(request, ticket_forms.ReleaseForm), perform)


@agent_required
@require_POST
def transfer(request: HttpRequest, number: str) -> HttpResponse:
    def perform(ticket: Ticket, form: Form) -> str:
        department = form.cleaned_data["department"]
        ticket_transfer(
            ticket=ticket,
            by=request.user,
            department=department,
            comment=form.cleaned_data.get("comment", ""),
        )
        return _("Transferred to %(department)s.") % {"department": department.full_name}

    return _act(request, number, "transfer", _bind(request, ticket_forms.TransferForm), perform)


@agent_required
@require_POST
def status(request: HttpRequest, number: str) -> HttpResponse:
    def perform(ticket: Ticket, form: Form) -> str:
        new = form.cleaned_data["status"]
        ticket_status_set(
            ticket=ticket, by=request.user, status=new, comment=form.cleaned_data["comment"]
        )
        return _("The ticket is now %(status)s.") % {"status": new.name}

    return _act(request, number, "status", _bind(request, ticket_forms.StatusForm), perform)


@agent_required
@require_POST
def priority(request: HttpRequest, number: str) -> HttpResponse:
    def perform(ticket: Ticket, form: Form) -> str:
        new = form.cleaned_data["priority"]
        ticket_priority_set(ticket=ticket, by=request.user, priority=new)
        return _("Priority set to %(priority)s.") % {"priority": new.name}

    return _act(request, number, "priority", _bind(request, ticket_forms.PriorityForm), perform)


@agent_required
@require_POST
def topic(request: HttpRequest, number: str) -> HttpResponse:
    def perform(ticket: Ticket, form: Form) -> str:
        new = form.cleaned_data.get("help_topic")
        ticket_help_topic_set(ticket=ticket, by=request.user, help_topic=new)
        if new is None:
            return _("Help topic removed.")
        return _("Help topic set to %(topic)s.") % {"topic": new.full_name}

    return _act(request, number, "topic", _bind(request, ticket_forms.TopicForm), perform)


@agent_required
@require_POST
def cti(request: HttpRequest, number: str) -> HttpResponse:
    def perform(ticket: Ticket, form: Form) -> str:
        item = form.cleaned_data.get("cti_item")
        ticket_cti_set(ticket=ticket, by=request.user, item=item)
        if item is None:
            return _("Classification removed.")
        return _("Classified as %(item)s.") % {"item": item.full_name}

    return _act(request, number, "cti", _bind(request, ticket_forms.CtiForm), perform)


@agent_required
@require_POST
def sla(request: HttpRequest, number: str) -> HttpResponse:
    def perform(ticket: Ticket, form: Form) -> str:
        plan = form.cleaned_data.get("sla")
        ticket_sla_set(ticket=ticket, by=request.user, sla=plan)
        if plan is None:
            return _("SLA plan removed: the ticket has no due date.")
        return _("SLA plan set to %(plan)s.") % {"plan": plan.name}

    return _act(request, number, "sla", _bind(request, ticket_forms.SlaForm), perform)


@agent_required
@require_POST
def due(request: HttpRequest, number: str) -> HttpResponse:
    def perform(ticket: Ticket, form: Form) -> str:
        due_at = form.cleaned_data.get("due_at")
        ticket_due_override_set(
            ticket=ticket, by=request.user, due_at=due_at, comment=form.cleaned_data["comment"]
        )
        if due_at is None:
            return _("The due date follows the SLA plan again.")
        return _("Due date set to %(due)s.") % {
            "due": date_format(timezone.localtime(due_at), "DATETIME_FORMAT")
        }

    return _act(request, number, "due", _bind(request, ticket_forms.DueOverrideForm), perform)


@agent_required
@require_POST
def subject(request: HttpRequest, number: str) -> HttpResponse:
    def perform(ticket: Ticket, form: Form) -> str:
        ticket_subject_edit(ticket=ticket, by=request.user, subject=form.cleaned_data["subject"])
        return _("Subject saved.")

    return _act(request, number, "subject", _bind(request, ticket_forms.SubjectForm), perform)


@agent_required
@require_POST
def collaborators(request: HttpRequest, number: str) -> HttpResponse:
    """Add a collaborator (`collab-email`, `collab-name`) or remove one (`remove`: user id)."""
    if "remove" in request.POST:

        def remove(ticket: Ticket, form: Form) -> str:
            user = form.cleaned_data["remove"]
            ticket_collaborator_remove(ticket=ticket, by=request.user, user=user)
            return _("%(email)s is no longer a collaborator.") % {"email": user.email}

        form = ticket_forms.CollaboratorRemoveForm(request.POST)
        return _act(request, number, "collab_remove", form, remove)

    def add(ticket: Ticket, form: Form) -> str:
        collaborator = ticket_collaborator_add(
            ticket=ticket,
            by=request.user,
            email=form.cleaned_data["email"],
            name=form.cleaned_data.get("name", ""),
        )
        return _("%(email)s now follows the ticket.") % {"email": collaborator.user.email}

    return _act(request, number, "collab", _bind(request, ticket_forms.CollaboratorAddForm), add)


# --- fragments ------------------------------------------------------------------------------


@agent_required
@require_GET
def entry_remote(request: HttpRequest, number: str, pk: int) -> HttpResponse:
    """One entry with its remote images loaded, at the agent's request. Without JavaScript
    the page itself shows that entry so (`?remote=<pk>`)."""
    ticket = ticket_get_for_page(user=request.user, number=number)
    entry = next(
        (e for e in ticket_thread_for_page(ticket=ticket, user=request.user) if e.pk == pk), None
    )
    if entry is None:
        raise Http404("No such entry.")
    if not request.htmx:
        url = reverse("tickets_staff:ticket", args=[ticket.number])
        return redirect(f"{url}?remote={entry.pk}#entry-{entry.pk}")
    entry.display_html, entry.quoted_html = entry_display(entry, remote_images=True)
    entry.has_remote_images = False
    entry.files = _entry_files(entry)
    return render(
        request, "tickets/staff/_partials/ticket_entry.html", {"entry": entry, "ticket": ticket}
    )


@agent_required
@require_GET
def history(request: HttpRequest, number: str) -> HttpResponse:
    """The audit trail, loaded when the agent opens it (the page itself shows it with
    `?history=1`, for use without JavaScript)."""
    ticket = ticket_get_for_page(user=request.user, number=number)
    if not request.htmx:
        url = reverse("tickets_staff:ticket", args=[ticket.number])
        return redirect(f"{url}?history=1#history")
    return render(
        request,
        "tickets/staff/_partials/ticket_events.html",
        {"ticket": ticket, "events": event_rows(list(ticket_events(ticket=ticket)))},
    )


urlpatterns = [
    # Before "<number>/": "attachments" is not a ticket number.
    path("attachments/<int:pk>/<str:filename>", staff_attachment, name="attachment"),
    path("<str:number>/", ticket_detail, name="ticket"),
    path("<str:number>/reply/", reply, name="reply"),
    path("<str:number>/note/", note, name="note"),
    path("<str:number>/preview/", preview, name="preview"),
    path("<str:number>/assign/", assign, name="assign"),
    path("<str:number>/claim/", claim, name="claim"),
    path("<str:number>/release/", release, name="release"),
    path("<str:number>/transfer/", transfer, name="transfer"),
    path("<str:number>/status/", status, name="status"),
    path("<str:number>/priority/", priority, name="priority"),
    path("<str:number>/topic/", topic, name="topic"),
    path("<str:number>/cti/", cti, name="cti"),
    path("<str:number>/subject/", subject, name="subject"),
    path("<str:number>/sla/", sla, name="sla"),
    path("<str:number>/due/", due, name="due"),
    path("<str:number>/collaborators/", collaborators, name="collaborators"),
    path("<str:number>/history/", history, name="history"),
    path("<str:number>/entries/<int:pk>/remote/", entry_remote, name="entry_remote"),
]
