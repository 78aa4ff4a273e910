"""Admin screens under /scp/admin/api/ (`admin.api`): API keys (create, list, revoke,
regenerate; the key is shown once) and webhooks (endpoints, their delivery log, redeliver)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.api_keys import api_key_create, api_key_regenerate, api_key_revoke
from accounts.decorators import admin_required
from accounts.models import ApiKey
from helpdesk.views_admin import form_errors_apply, paginate

from .forms_admin import ApiKeyForm, ReauthForm, WebhookForm
from .models import Webhook, WebhookDelivery
from .webhooks import delivery_redeliver, secret_generate

app_name = "api_admin"
ADMIN = "admin.api"


def _context(section: str, **extra: object) -> dict:
    return {"admin_section": section, "nav_active": "admin", **extra}


def _show_secret_once(
    request: HttpRequest, *, section: str, title: str, secret: str, back: str, note: str
) -> HttpResponse:
    # Rendered, never stored, flashed or redirected with: the secret exists in clear only in
    # this answer.
    response = render(
        request,
        "api/secret_once.html",
        _context(section, title=title, secret=secret, back=back, note=note),
    )
    response["Cache-Control"] = "no-store"
    return response


def _show_key_once(request: HttpRequest, api_key: ApiKey, key: str) -> HttpResponse:
    return _show_secret_once(
        request,
        section="api_keys",
        title=_("API key “%(name)s”") % {"name": api_key.name},
        secret=key,
        back=reverse("api_admin:key_list"),
        note=_(
            "Copy the key now: it is stored hashed and cannot be shown again. Send it as "
            "X-API-Key or Authorization: Bearer."
        ),
    )


@admin_required(ADMIN)
def key_list(request: HttpRequest) -> HttpResponse:
    keys = ApiKey.objects.select_related("user").order_by("-is_active", "name", "pk")
    return render(
        request, "api/key_list.html", _context("api_keys", page_obj=paginate(request, keys))
    )


@admin_required(ADMIN)
def key_create(request: HttpRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = {name: value for name, value in form.cleaned_data.items() if name != "password"}
        try:
            new = api_key_create(by=request.user, **data)
        except ValidationError as error:
            form_errors_apply(form, error)
        else:
            return _show_key_once(request, new.api_key, new.key)
    return render(request, "api/key_form.html", _context("api_keys", form=form))


@admin_required(ADMIN)
@require_POST
def key_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    api_key = api_key_revoke(api_key=get_object_or_404(ApiKey, pk=pk))
    messages.success(request, _("The key “%(name)s” was revoked.") % {"name": api_key.name})
    return redirect("api_admin:key_list")


@admin_required(ADMIN)
def key_regenerate(request: HttpRequest, pk: int) -> HttpResponse:
    api_key = get_object_or_404(ApiKey.objects.select_related("user"), pk=pk, is_active=True)
    form = ReauthForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        new = api_key_regenerate(api_key=api_key)
        return _show_key_once(request, new.api_key, new.key)
    return render(
        request, "api/key_regenerate.html", _context("api_keys", form=form, api_key=api_key)
    )


@admin_required(ADMIN)
def webhook_list(request: HttpRequest) -> HttpResponse:
    hooks = Webhook.objects.order_by("name", "pk")
    return render(
        request, "api/webhook_list.html", _context("webhooks", page_obj=paginate(request, hooks))
    )


@admin_required(ADMIN)
def webhook_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    hook = get_object_or_404(Webhook, pk=pk) if pk else None
    form = WebhookForm(request.POST or None, instance=hook)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            saved = form.save(commit=False)
            if hook is None:
                saved.secret, saved.created_by = secret_generate(), request.user
            elif saved.is_active and not Webhook.objects.get(pk=pk).is_active:
                saved.failure_count, saved.disabled_at, saved.disabled_reason = 0, None, ""
            saved.save()
        if hook is None:
            return _show_secret_once(
                request,
                section="webhooks",
                title=_("Webhook “%(name)s”") % {"name": saved.name},
                secret=saved.secret,
                back=reverse("api_admin:webhook_detail", args=[saved.pk]),
                note=_(
                    "The signing secret, shown this once: the receiver checks "
                    "X-Helpdesk-Signature (HMAC-SHA256 of the timestamp, a dot and the body)."
                ),
            )
        messages.success(request, _("Webhook saved."))
        return redirect("api_admin:webhook_detail", pk=saved.pk)
    return render(request, "api/webhook_form.html", _context("webhooks", form=form, object=hook))


@admin_required(ADMIN)
def webhook_detail(request: HttpRequest, pk: int) -> HttpResponse:
    hook = get_object_or_404(Webhook, pk=pk)
    deliveries = WebhookDelivery.objects.filter(webhook=hook).order_by("-created_at", "-pk")
    return render(
        request,
        "api/webhook_detail.html",
        _context("webhooks", hook=hook, page_obj=paginate(request, deliveries)),
    )


@admin_required(ADMIN)
@require_POST
def webhook_redeliver(request: HttpRequest, pk: int, delivery_id: int) -> HttpResponse:
    delivery = get_object_or_404(WebhookDelivery, pk=delivery_id, webhook_id=pk)
    delivery_redeliver(delivery=delivery)
    messages.success(request, _("The delivery was queued again."))
    return redirect("api_admin:webhook_detail", pk=pk)


@admin_required(ADMIN)
@require_POST
def webhook_delete(request: HttpRequest, pk: int) -> HttpResponse:
    get_object_or_404(Webhook, pk=pk).delete()
    messages.success(request, _("Webhook deleted."))
    return redirect("api_admin:webhook_list")


urlpatterns = [
    path("keys/", key_list, name="key_list"),
    path("keys/new/", key_create, name="key_create"),
    path("keys/<int:pk>/revoke/", key_revoke, name="key_revoke"),
    path("keys/<int:pk>/regenerate/", key_regenerate, name="key_regenerate"),
    path("webhooks/", webhook_list, name="webhook_list"),
    path("webhooks/new/", webhook_edit, name="webhook_create"),
    path("webhooks/<int:pk>/", webhook_detail, name="webhook_detail"),
    path("webhooks/<int:pk>/edit/", webhook_edit, name="webhook_edit"),
    path("webhooks/<int:pk>/delete/", webhook_delete, name="webhook_delete"),
    path(
        "webhooks/<int:pk>/deliveries/<int:delivery_id>/redeliver/",
        webhook_redeliver,
        name="webhook_redeliver",
    ),
]
