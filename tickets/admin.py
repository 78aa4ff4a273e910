from django.contrib import admin

from .models import Priority, Sequence, Ticket, TicketStatus


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ["number", "subject", "user", "department", "status", "priority", "assignee"]
    list_select_related = ["user", "department", "status", "priority", "assignee"]
    search_fields = ["number", "subject"]
    raw_id_fields = ["user", "assignee", "closed_by", "organization"]
    readonly_fields = ["number"]


@admin.register(TicketStatus)
class TicketStatusAdmin(admin.ModelAdmin):
    list_display = ["name", "state", "is_default", "sort_order"]


@admin.register(Priority)
class PriorityAdmin(admin.ModelAdmin):
    list_display = ["name", "urgency", "color", "is_default"]


admin.site.register(Sequence)
