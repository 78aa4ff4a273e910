"""The mail admin screens under /scp/admin/mail/ (namespace `mail_admin`): mailboxes,
incoming mail (with retry and the raw download) and email templates.

Every view is for agents whose role holds `admin.email`; every change goes through
`mailgate.admin_services` or `helpdesk.adminlog`, which record the admin log.
"""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db.models import Count, Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.decorators import admin_required
from helpdesk.adminlog import admin_form_save
from helpdesk.lib.sanitize import sanitize_html
from helpdesk.views_admin import error_text, form_errors_apply, paginate

from . import admin_services
from .fetching import FETCHED_PROTOCOLS
from .forms_admin import EmailTemplateForm, InboundFilterForm, InboundRetryForm, MailboxForm
from .models import EmailTemplate, InboundMessage, InboundStatus, Mailbox, TemplateCode

PERMISSION = "admin.email"
guard = admin_required(PERMISSION)
# Messages processed by one click on "retry": each may open a ticket, so a click stays short.
RETRY_BATCH = 100
# What a row of the incoming mail list shows (the ticket's large search document stays out).
INBOUND_LIST_FIELDS = (
    "pk", "received_at", "processed_at", "channel", "size", "from_email", "subject", "status",
    "outcome", "error", "attempts", "raw", "mailbox__name", "ticket__number",
)  # fmt: skip


def _context(section: str, **extra: Any) -> dict[str, Any]:
    return {"admin_section": section, "nav_active": "admin", **extra}


@guard
def index(request: HttpRequest) -> HttpResponse:
    return redirect("mail_admin:mailbox_list")


# --- mailboxes ------------------------------------------------------------------------------


@guard
def mailbox_list(request: HttpRequest) -> HttpResponse:
    mailboxes = Mailbox.objects.select_related("department").defer("password")
    page = paginate(request, mailboxes)
    return render(
        request,
        "mailgate/admin/mailbox_list.html",
        _context("mailboxes", page_obj=page, fetched=FETCHED_PROTOCOLS),
    )


@guard
def mailbox_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    mailbox = get_object_or_404(Mailbox, pk=pk) if pk is not None else None
    if request.method == "POST":
        form = MailboxForm(request.POST, instance=mailbox)
        if form.is_valid():
            try:
                saved = admin_form_save(form=form, actor=request.user)
            except ValidationError as error:
                form_errors_apply(form, error)
            else:
                messages.success(request, _("Mailbox “%(name)s” was saved.") % {"name": saved.name})
                return redirect("mail_admin:mailbox_edit", pk=saved.pk)
    else:
        form = MailboxForm(instance=mailbox)
    return render(
        request,
        "mailgate/admin/mailbox_form.html",
        _context("mailboxes", form=form, mailbox=mailbox, fetched=FETCHED_PROTOCOLS),
    )


def _mailbox_active(request: HttpRequest, pk: int, *, active: bool) -> HttpResponse:
    mailbox = get_object_or_404(Mailbox, pk=pk)
    admin_services.mailbox_set_active(mailbox=mailbox, active=active, actor=request.user)
    text = _("Mailbox “%(name)s” is on.") if active else _("Mailbox “%(name)s” is off.")
    messages.success(request, text % {"name": mailbox.name})
    return redirect("mail_admin:mailbox_list")


@guard
@require_POST
def mailbox_activate(request: HttpRequest, pk: int) -> HttpResponse:
    return _mailbox_active(request, pk, active=True)


@guard
@require_POST
def mailbox_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    return _mailbox_active(request, pk, active=False)


@guard
@require_POST
def mailbox_test(request: HttpRequest, pk: int) -> HttpResponse:
    mailbox = get_object_or_404(Mailbox, pk=pk)
    result = admin_services.mailbox_connection_test(mailbox=mailbox)
    if request.htmx:
        return render(
            request,
            "mailgate/admin/_partials/connection_result.html",
            {"result": result, "mailbox": mailbox},
        )
    (messages.success if result.ok else messages.error)(request, result.message)
    return redirect("mail_admin:mailbox_edit", pk=mailbox.pk)


@guard
@require_POST
def mailbox_fetch(request: HttpRequest, pk: int) -> HttpResponse:
    mailbox = get_object_or_404(Mailbox, pk=pk)
    try:
        admin_services.mailbox_fetch_queue(mailbox=mailbox)
    except ValidationError as error:
        messages.error(request, error_text(error))
    else:
        messages.success(
            request,
            _("Mailbox “%(name)s” will be fetched now; its mail appears under Incoming mail.")
            % {"name": mailbox.name},
        )
    return redirect("mail_admin:mailbox_list")


# --- incoming mail --------------------------------------------------------------------------


@guard
def inbound_list(request: HttpRequest) -> HttpResponse:
    form = InboundFilterForm(request.GET or None)
    rows = InboundMessage.objects.all()
    status = mailbox = None
    if form.is_bound and form.is_valid():
        mailbox = form.cleaned_data["mailbox"]
        status = form.cleaned_data["status"] or None
    if mailbox is not None:
        rows = rows.filter(mailbox=mailbox)
    # The tabs' counts: one aggregate over the mailbox's messages.
    counts = rows.aggregate(
        total=Count("pk"),
        **{value: Count("pk", filter=Q(status=value)) for value in InboundStatus.values},
    )
    if status:
        rows = rows.filter(status=status)
    rows = (
        rows.select_related("mailbox", "ticket")
        .only(*INBOUND_LIST_FIELDS)
        .order_by("-received_at", "-pk")
    )
    page = paginate(request, rows)
    page.object_list = list(page.object_list)
    admin_services.inbound_headers_fill(page.object_list)
    filters = {"status": status or "", "mailbox": mailbox.pk if mailbox else ""}
    query = urlencode({key: value for key, value in filters.items() if value})
    return render(
        request,
        "mailgate/admin/inbound_list.html",
        _context(
            "inbound",
            form=form,
            page_obj=page,
            counts=counts,
            statuses=InboundStatus.choices,
            status=status or "",
            filters=filters,
            query=query,
            retryable=admin_services.RETRYABLE,
        ),
    )


def _inbound_list_url(request: HttpRequest) -> str:
    """The list with the filters the bulk form came from."""
    filters = {key: request.POST.get(key, "") for key in ("status", "mailbox")}
    query = urlencode({key: value for key, value in filters.items() if value.isalnum()})
    return reverse("mail_admin:inbound_list") + (f"?{query}" if query else "")


def _retry_report(request: HttpRequest, report: admin_services.RetryReport) -> None:
    if report.processed:
        messages.success(
            request, _("%(count)s messages were processed.") % {"count": report.processed}
        )
    for pk, error in report.still_failed[:10]:
        messages.error(
            request, _("Message %(pk)s failed again: %(error)s") % {"pk": pk, "error": error}
        )
    if len(report.still_failed) > 10:
        messages.error(
            request,
            _("%(count)s more messages failed again.") % {"count": len(report.still_failed) - 10},
        )
    if report.skipped and not (report.processed or report.still_failed):
        messages.info(request, _("Those messages were already processed."))


@guard
@require_POST
def inbound_retry_bulk(request: HttpRequest) -> HttpResponse:
    back = _inbound_list_url(request)
    retryable = InboundMessage.objects.filter(status__in=admin_services.RETRYABLE).order_by("pk")
    if "all_failed" in request.POST:
        chosen = retryable.filter(status=InboundStatus.FAILED)
        mailbox = request.POST.get("mailbox", "")
        if mailbox.isdigit():
            chosen = chosen.filter(mailbox_id=int(mailbox))
    else:
        form = InboundRetryForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("Tick the messages to process again."))
            return redirect(back)
        chosen = retryable.filter(pk__in=form.cleaned_data["ids"])
    batch = list(chosen[: RETRY_BATCH + 1])
    if not batch:
        messages.info(request, _("There is no failed message to process again."))
        return redirect(back)
    report = admin_services.inbound_retry(messages=batch[:RETRY_BATCH], actor=request.user)
    _retry_report(request, report)
    if len(batch) > RETRY_BATCH:
        messages.warning(
            request,
            _("The first %(count)s were processed; retry again for the rest.")
            % {"count": RETRY_BATCH},
        )
    return redirect(back)


@guard
def inbound_detail(request: HttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(
        InboundMessage.objects.select_related("mailbox", "ticket").defer("ticket__search_document"),
        pk=pk,
    )
    result = admin_services.inbound_parse(message=message)
    parsed = result.parsed
    return render(
        request,
        "mailgate/admin/inbound_detail.html",
        _context(
            "inbound",
            message=message,
            title=message.subject or (parsed.subject if parsed else ""),
            parsed=parsed,
            parse_error=result.error,
            # Parsed HTML passes the one sanitiser again before it reaches the page.
            body_html=sanitize_html(parsed.body_html) if parsed and parsed.body_html else "",
            can_retry=message.status in admin_services.RETRYABLE,
        ),
    )


@guard
@require_POST
def inbound_retry(request: HttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(InboundMessage, pk=pk)
    report = admin_services.inbound_retry(messages=[message], actor=request.user)
    _retry_report(request, report)
    return redirect("mail_admin:inbound_detail", pk=message.pk)


@guard
def inbound_raw(request: HttpRequest, pk: int) -> FileResponse:
    message = get_object_or_404(InboundMessage, pk=pk)
    if message.raw_data is not None:
        content = io.BytesIO(message.raw_data)
    elif message.raw.name and default_storage.exists(message.raw.name):
        content = default_storage.open(message.raw.name, "rb")
    else:
        raise Http404(_("The raw message is missing from storage."))
    return FileResponse(
        content,
        as_attachment=True,
        filename=f"message-{message.pk}.eml",
        content_type="message/rfc822",
    )


# --- email templates ------------------------------------------------------------------------


@guard
def template_list(request: HttpRequest) -> HttpResponse:
    rows = {row.code: row for row in EmailTemplate.objects.all()}
    templates = []
    for code, label in TemplateCode.choices:
        template = rows.get(code) or admin_services.template_for_edit(code)
        templates.append(
            {
                "code": code,
                "label": label,
                "audience": admin_services.template_audience(code),
                "subject": template.subject,
                "is_active": template.is_active,
                "is_default": admin_services.template_is_default(template),
                "updated_at": template.updated_at if code in rows else None,
            }
        )
    return render(
        request, "mailgate/admin/template_list.html", _context("templates", templates=templates)
    )


def _template(code: str) -> EmailTemplate:
    if code not in TemplateCode.values:
        raise Http404(_("No such email."))
    return admin_services.template_for_edit(code)


def _template_page(
    request: HttpRequest,
    template: EmailTemplate,
    form: EmailTemplateForm,
    preview: admin_services.TemplatePreview | None,
) -> HttpResponse:
    return render(
        request,
        "mailgate/admin/template_form.html",
        _context(
            "templates",
            template=template,
            form=form,
            preview=preview,
            preview_html=sanitize_html(preview.body_html) if preview and preview.body_html else "",
            audience=admin_services.template_audience(template.code),
            is_default=admin_services.template_is_default(template),
        ),
    )


def _preview_of(template: EmailTemplate) -> admin_services.TemplatePreview | None:
    try:
        return admin_services.email_template_preview(
            code=template.code,
            subject=template.subject,
            body_text=template.body_text,
            body_html=template.body_html,
        )
    except ValidationError:
        return None


@guard
def template_edit(request: HttpRequest, code: str) -> HttpResponse:
    template = _template(code)
    if request.method == "POST":
        form = EmailTemplateForm(request.POST, instance=template)
        if form.is_valid():
            try:
                admin_form_save(form=form, actor=request.user)
            except ValidationError as error:
                form_errors_apply(form, error)
            else:
                messages.success(request, _("The email “%(name)s” was saved.") % {"name": template})
                return redirect("mail_admin:template_edit", code=code)
        return _template_page(request, template, form, None)
    return _template_page(
        request, template, EmailTemplateForm(instance=template), _preview_of(template)
    )


@guard
@require_POST
def template_preview(request: HttpRequest, code: str) -> HttpResponse:
    """The email on sample data, from the source in the form (nothing is saved). htmx gets
    the preview fragment; without JavaScript the whole page comes back with it."""
    template = _template(code)
    form = EmailTemplateForm(request.POST, instance=template)
    source = {name: request.POST.get(name, "") for name in admin_services.TEMPLATE_FIELDS}
    preview = None
    errors: dict[str, list[str]] = {}
    try:
        preview = admin_services.email_template_preview(code=code, **source)
    except ValidationError as error:
        errors = error.message_dict
    if request.htmx:
        return render(
            request,
            "mailgate/admin/_partials/template_preview.html",
            {
                "preview": preview,
                "preview_html": sanitize_html(preview.body_html)
                if preview and preview.body_html
                else "",
                "errors": errors,
                "labels": {
                    name: form.fields[name].label for name in admin_services.TEMPLATE_FIELDS
                },
            },
        )
    form.is_valid()
    return _template_page(request, template, form, preview)


@guard
@require_POST
def template_reset(request: HttpRequest, code: str) -> HttpResponse:
    template = _template(code)
    try:
        admin_services.email_template_reset(code=code, actor=request.user)
    except ValidationError as error:
        messages.error(request, error_text(error))
    else:
        messages.success(
            request, _("The email “%(name)s” is back to the shipped text.") % {"name": template}
        )
    return redirect("mail_admin:template_edit", code=code)
