"""Emergency access for superusers; the help desk's own admin screens come with the staff UI.

Mailbox passwords are write-only here too: the form never shows the stored one back."""

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from . import services
from .models import EmailTemplate, InboundMessage, InboundStatus, Mailbox, OutboundMessage


class MailboxForm(forms.ModelForm):
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the stored password.",
    )

    class Meta:
        model = Mailbox
        fields = [
            "name", "email", "protocol", "host", "port", "security", "username", "password",
            "folder", "after_fetch", "move_to_folder", "batch_size", "department", "help_topic",
            "priority", "is_active", "max_failures",
        ]  # fmt: skip

    def clean_password(self) -> str:
        # An empty field keeps what is stored; the stored value never reaches the page.
        return self.cleaned_data["password"] or (self.instance.password if self.instance.pk else "")


@admin.register(Mailbox)
class MailboxAdmin(admin.ModelAdmin):
    form = MailboxForm
    list_display = [
        "name",
        "email",
        "protocol",
        "host",
        "is_active",
        "error_count",
        "last_error_at",
    ]
    readonly_fields = ["error_count", "last_error", "last_error_at", "last_fetched_at"]


@admin.register(InboundMessage)
class InboundMessageAdmin(admin.ModelAdmin):
    list_display = [
        "received_at",
        "mailbox",
        "from_email",
        "subject",
        "status",
        "outcome",
        "ticket",
    ]
    list_filter = ["status", "outcome", "mailbox"]
    list_select_related = ["mailbox", "ticket"]
    search_fields = ["from_email", "subject", "message_id"]
    actions = ["retry"]

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        return [field.name for field in InboundMessage._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Process the selected failed messages again")
    def retry(self, request: HttpRequest, queryset: QuerySet[InboundMessage]) -> None:
        done = 0
        for message in queryset.filter(status=InboundStatus.FAILED):
            try:
                services.inbound_process(message=message)
                done += 1
            except Exception as error:  # shown to the admin; the message stays failed
                self.message_user(request, f"{message.pk}: {error}", messages.ERROR)
        self.message_user(request, f"{done} messages processed again.")


@admin.register(EmailTemplate)
class EmailTemplateAdmin(admin.ModelAdmin):
    list_display = ["code", "subject", "is_active", "updated_at"]


@admin.register(OutboundMessage)
class OutboundMessageAdmin(admin.ModelAdmin):
    list_display = ["created_at", "template", "recipient", "subject", "status", "ticket"]
    list_filter = ["status", "template", "audience"]
    list_select_related = ["ticket"]
    search_fields = ["recipient", "subject", "message_id"]

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        return [field.name for field in OutboundMessage._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
