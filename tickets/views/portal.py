"""The customer portal's ticket pages: open a ticket, my tickets, a ticket, guest access.

Who acts on a page is the signed-in customer, or a guest: someone who followed an emailed,
signed link to one ticket. The guest session holds that ticket's id and its customer's id
and opens nothing else. Every fetch goes through `tickets.selectors` (404 when the ticket is
not the customer's to see) and every change through `tickets.services`.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import permissions
from accounts.api_keys import client_ip
from accounts.models import User
from accounts.services import user_get_by_email
from accounts.views import portal_mail_send, portal_rate_limited
from helpdesk.lib import files, querycache
from kb.services import deflections_filed_in_session
from routing.filters import DraftRejected

from ..forms_portal import GuestAccessForm, ReplyForm, TicketOpenForm
from ..models import Attachment, Collaborator, EntryKind, Source, StatusState, Ticket
from ..selectors import ticket_entries_for_user, ticket_get_for_user, ticket_list_for_user
from ..services import TicketDraft, ticket_message_add, ticket_open, ticket_status_set
from ..statuses import TAKES_MESSAGES, status_default

GUEST_SALT = "tickets.portal.guest"
GUEST_SESSION_KEY = "portal_guest"
OPENED_SESSION_KEY = "portal_opened"
PAGE_SIZE = 25


# --- who is acting ----------------------------------------------------------------------------


def _guest(request: HttpRequest, number: str | None = None) -> User | None:
    """The customer of the guest session, when it is scoped to ticket `number`."""
    scope = request.session.get(GUEST_SESSION_KEY)
    if not isinstance(scope, dict) or (number is not None and scope.get("number") != number):
        return None
    user = User.objects.filter(pk=scope.get("user"), is_active=True).first()
    if user is None or permissions.is_agent(user):
        return None
    return user


def _customer(request: HttpRequest, number: str) -> User | None:
    if request.user.is_authenticated:
        return request.user
    return _guest(request, number)


def _staff_redirect(number: str | None = None) -> HttpResponse:
    """Agents work tickets in the staff UI; the portal shows them nothing of the department
    (and never internal notes)."""
    try:
        if number is not None:
            return redirect(reverse("tickets_staff:ticket", kwargs={"number": number}))
        return redirect(reverse("tickets_staff:queue_default"))
    except NoReverseMatch:
        return redirect("staff:home")


def _ticket_for(request: HttpRequest, number: str, *, to_read: bool = False) -> tuple[User, Ticket]:
    """The acting customer and their ticket, or 404: anonymous visitors, other customers
    and guests of another ticket cannot tell a ticket that exists from one that does not.
    `to_read`: for showing only, without the large search document."""
    user = _customer(request, number)
    if user is None:
        raise Http404("No such ticket.")
    if to_read:
        ticket = (
            ticket_list_for_user(user=user).defer("search_document").filter(number=number).first()
        )
        if ticket is None:
            raise Http404("No such ticket.")
    else:
        ticket = ticket_get_for_user(user=user, number=number)
    if not request.user.is_authenticated and request.session[GUEST_SESSION_KEY]["ticket"] != (
        ticket.pk
    ):
        raise Http404("No such ticket.")
    return user, ticket


def _errors_to_form(form: Form, error: ValidationError) -> None:
    """A service's field errors onto the form; fields the form lacks become form errors."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, field_errors in error.message_dict.items():
        form.add_error(field if field in form.fields else None, field_errors)


# --- opening ----------------------------------------------------------------------------------


def open_ticket(request: HttpRequest) -> HttpResponse:
    signed_in = request.user.is_authenticated
    form = TicketOpenForm(request.POST or None, request.FILES or None, signed_in=signed_in)
    if request.method == "POST" and form.is_valid():
        if not signed_in and portal_rate_limited(
            request, "open", settings.HELPDESK_PORTAL_OPEN_LIMIT
        ):
            messages.error(
                request, _("Too many tickets from your address. Please try again later.")
            )
            return render(request, "tickets/portal/open.html", {"form": form}, status=429)
        data = form.cleaned_data
        draft = TicketDraft(
            subject=data["subject"],
            body=data["message"],
            user=request.user if signed_in else None,
            email="" if signed_in else data["email"],
            name="" if signed_in else data["name"],
            help_topic=data.get("help_topic"),
            source=Source.WEB,
            attachments=data["attachments"],
            ip_address=client_ip(request.META),
        )
        try:
            ticket = ticket_open(draft=draft, by=request.user if signed_in else None)
        except DraftRejected:
            form.add_error(None, _("We cannot accept this ticket. Please contact us another way."))
        except ValidationError as error:
            _errors_to_form(form, error)
        except PermissionDenied as error:
            form.add_error(None, str(error))
        else:
            if not signed_in:
                _guest_link_send(ticket=ticket, user=ticket.user)
            # Suggested articles opened in this browser did not spare the ticket.
            deflections_filed_in_session(ticket=ticket, session_key=request.session.session_key)
            request.session[OPENED_SESSION_KEY] = ticket.number
            return redirect("tickets_portal:open_done")
    status = 400 if form.errors else 200
    return render(
        request, "tickets/portal/open.html", {"form": form, "nav_active": "new"}, status=status
    )


def open_done(request: HttpRequest) -> HttpResponse:
    """The confirmation: the number of the ticket this browser just opened (from the session,
    so the page shows nothing to anyone else)."""
    number = request.session.get(OPENED_SESSION_KEY)
    if not number:
        return redirect("tickets_portal:open")
    return render(request, "tickets/portal/open_done.html", {"number": number})


# --- my tickets -------------------------------------------------------------------------------


def _my_tickets(user: User) -> QuerySet[Ticket]:
    """Mine, those I am copied on, and my organization's when it shares them: unresolved
    first, then newest."""
    return (
        ticket_list_for_user(user=user)
        .only(
            "number",
            "subject",
            "created_at",
            "updated_at",
            "user__name",
            "user__email",
            "status__name",
            "status__state",
            "department__name",
            "department__is_public",
            "help_topic__name",
        )
        .select_related(None)
        .select_related("user", "status", "department", "help_topic")
        .annotate(
            resolved=Case(
                When(status__state=StatusState.OPEN, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("resolved", "-created_at", "-pk")
    )


def ticket_list(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path(), reverse("portal:login"))
    if permissions.is_agent(request.user):
        return _staff_redirect()
    page_asked = request.GET.get("page")

    def load() -> tuple[int, int, list[Ticket]]:
        tickets = _my_tickets(request.user)
        # The page's ids first (kept in the query cache with the count), then its rows.
        ids = querycache.CachedPages(tickets.values_list("pk", flat=True))
        page = Paginator(ids, PAGE_SIZE).get_page(page_asked)
        rows = {ticket.pk: ticket for ticket in tickets.filter(pk__in=page.object_list)}
        return (
            page.paginator.count,
            page.number,
            [rows[pk] for pk in page.object_list if pk in rows],
        )

    # The page as a whole until ticket data changes, for what this customer may see.
    key = (page_asked, permissions.visibility_key(request.user))
    count, number, rows = querycache.remember("my tickets page", key, load)
    page = querycache.known_page(count, number, rows, PAGE_SIZE)
    return render(
        request,
        "tickets/portal/list.html",
        {"page": page, "tickets": page.object_list, "nav_active": "tickets"},
    )


# --- one ticket -------------------------------------------------------------------------------


def _ticket_page(
    request: HttpRequest,
    user: User,
    ticket: Ticket,
    *,
    form: ReplyForm | None = None,
    status: int = 200,
) -> HttpResponse:
    entries = ticket_entries_for_user(ticket=ticket, user=user).exclude(kind=EntryKind.NOTE)
    takes_messages = ticket.status.state in TAKES_MESSAGES
    context = {
        "ticket": ticket,
        "entries": entries,
        "form": form or ReplyForm(),
        "can_reply": takes_messages and permissions.can(user, "ticket.message", ticket),
        "can_close": ticket.status.state == StatusState.OPEN
        and permissions.can(user, "ticket.close", ticket),
        "is_guest": not request.user.is_authenticated,
        "guest_email": user.email if not request.user.is_authenticated else "",
        "show_department": ticket.department.is_public,
        "is_owner": ticket.user_id == user.pk,
        "image_types": files.RASTER_IMAGE_TYPES,
    }
    return render(request, "tickets/portal/ticket.html", context, status=status)


def ticket_detail(request: HttpRequest, number: str) -> HttpResponse:
    if request.user.is_authenticated and permissions.is_agent(request.user):
        return _staff_redirect(number)
    if _customer(request, number) is None:
        # A link from a notification, followed while signed out: sign in (or ask for a guest
        # link there). The same for any number, so it tells nothing about the ticket.
        return redirect_to_login(request.get_full_path(), reverse("portal:login"))
    user, ticket = _ticket_for(request, number, to_read=True)
    return _ticket_page(request, user, ticket)


@require_POST
def ticket_reply(request: HttpRequest, number: str) -> HttpResponse:
    if request.user.is_authenticated and permissions.is_agent(request.user):
        return _staff_redirect(number)
    user, ticket = _ticket_for(request, number)
    form = ReplyForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            ticket_message_add(
                ticket=ticket,
                user=user,
                body=form.cleaned_data["message"],
                attachments=form.cleaned_data["attachments"],
                source=Source.WEB,
            )
        except ValidationError as error:
            _errors_to_form(form, error)
        except PermissionDenied:
            form.add_error(None, _("You cannot write to this ticket."))
        else:
            messages.success(request, _("Your reply was added."))
            return redirect("tickets_portal:ticket", number=ticket.number)
    ticket.refresh_from_db()
    return _ticket_page(request, user, ticket, form=form, status=400)


@require_POST
def ticket_close(request: HttpRequest, number: str) -> HttpResponse:
    if request.user.is_authenticated and permissions.is_agent(request.user):
        return _staff_redirect(number)
    user, ticket = _ticket_for(request, number)
    try:
        ticket_status_set(ticket=ticket, by=user, status=status_default(StatusState.CLOSED))
    except PermissionDenied:
        messages.error(request, _("You cannot close this ticket."))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("The ticket is closed. Write to it again to reopen it."))
    return redirect("tickets_portal:ticket", number=ticket.number)


def attachment(request: HttpRequest, number: str, attachment_id: int) -> HttpResponse:
    """A file of the ticket's thread, never of an internal note; 404 for anyone else."""
    from .attachments import attachment_response

    if request.user.is_authenticated and permissions.is_agent(request.user):
        raise Http404("No such attachment.")
    user, ticket = _ticket_for(request, number, to_read=True)
    found = (
        Attachment.objects.filter(pk=attachment_id, entry__thread__ticket=ticket)
        .exclude(entry__kind=EntryKind.NOTE)
        .select_related("entry__thread__ticket")
        .first()
    )
    if found is None:
        raise Http404("No such attachment.")
    # A guest acts as the ticket's customer for this request: the response checks access
    # again for `request.user`.
    request.user = user
    return attachment_response(request, found)


# --- guest access -----------------------------------------------------------------------------


def _guest_link_send(*, ticket: Ticket, user: User) -> None:
    token = signing.TimestampSigner(salt=GUEST_SALT).sign_object(
        {"t": ticket.pk, "u": user.pk, "n": ticket.number}, compress=True
    )
    path = reverse("tickets_portal:guest_open", kwargs={"token": token})
    portal_mail_send(
        template="guest_link",
        to=user.email,
        context={
            "number": ticket.number,
            "subject": ticket.subject,
            "name": user.get_full_name(),
            "url": f"{settings.SITE_URL}{path}",
            "days": max(1, settings.HELPDESK_GUEST_LINK_MAX_AGE // 86400),
        },
    )


def _guest_match(email: str, number: str) -> tuple[Ticket, User] | None:
    """The ticket and its customer when `email` is one of the addresses of the ticket's
    owner or of a collaborator on it (as osTicket checks); agents have no guest access."""
    user = user_get_by_email(email=email)
    ticket = (
        Ticket.objects.filter(number=number)
        .exclude(status__state=StatusState.DELETED)
        .only("pk", "number", "subject", "user_id")
        .first()
    )
    if user is None or ticket is None or not user.is_active or permissions.is_agent(user):
        return None
    if (
        ticket.user_id != user.pk
        and not Collaborator.objects.filter(ticket=ticket, user=user).exists()
    ):
        return None
    return ticket, user


def guest(request: HttpRequest) -> HttpResponse:
    """Check a ticket without an account: the same answer whether or not it matched."""
    form = GuestAccessForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if portal_rate_limited(request, "email", settings.HELPDESK_PORTAL_EMAIL_LIMIT):
            messages.error(
                request, _("Too many requests from your address. Please try again later.")
            )
            return render(request, "tickets/portal/guest.html", {"form": form}, status=429)
        match = _guest_match(form.cleaned_data["email"], form.cleaned_data["number"])
        if match is not None:
            _guest_link_send(ticket=match[0], user=match[1])
        messages.success(
            request,
            _(
                "If that address and ticket number match, we sent a link to the ticket to the "
                "address. It works for %(days)d days."
            )
            % {"days": max(1, settings.HELPDESK_GUEST_LINK_MAX_AGE // 86400)},
        )
        return redirect("tickets_portal:guest")
    return render(
        request, "tickets/portal/guest.html", {"form": form}, status=400 if form.errors else 200
    )


def guest_open(request: HttpRequest, token: str) -> HttpResponse:
    """The emailed link: a session scoped to that one ticket, then its page (the token does
    not stay in the address bar)."""
    try:
        data = signing.TimestampSigner(salt=GUEST_SALT).unsign_object(
            token, max_age=settings.HELPDESK_GUEST_LINK_MAX_AGE
        )
        ticket_id, user_id, number = int(data["t"]), int(data["u"]), str(data["n"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return render(request, "tickets/portal/guest_invalid.html", status=400)
    if request.user.is_authenticated:
        if request.user.pk == user_id:
            return redirect("tickets_portal:ticket", number=number)
        logout(request)  # someone else's link: not mixed into this account's session
    else:
        request.session.cycle_key()
    request.session[GUEST_SESSION_KEY] = {"ticket": ticket_id, "user": user_id, "number": number}
    return redirect("tickets_portal:ticket", number=number)


urlpatterns = [
    path("", ticket_list, name="list"),
    path("new/", open_ticket, name="open"),
    path("new/done/", open_done, name="open_done"),
    path("access/", guest, name="guest"),
    path("access/<str:token>/", guest_open, name="guest_open"),
    path("<str:number>/", ticket_detail, name="ticket"),
    path("<str:number>/reply/", ticket_reply, name="reply"),
    path("<str:number>/close/", ticket_close, name="close"),
    path(
        "<str:number>/attachments/<int:attachment_id>/",
        attachment,
        name="attachment",
    ),
]
