from django.contrib import admin

from .models import (
    BannedAddress,
    Category,
    CtiItem,
    CtiType,
    Department,
    Filter,
    FilterRule,
    HelpTopic,
    Team,
)


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ["name", "parent", "is_active", "is_public", "auto_assign"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "lead", "is_active"]
    filter_horizontal = ["members"]


@admin.register(HelpTopic)
class HelpTopicAdmin(admin.ModelAdmin):
    list_display = ["name", "parent", "department", "priority", "is_public", "is_active"]


# Deleting a CTI level that tickets use is refused by the admin's own check of protected
# objects (the ticket columns are PROTECT); archive it instead.
@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "is_active", "sort_order"]


@admin.register(CtiType)
class CtiTypeAdmin(admin.ModelAdmin):
    list_display = ["name", "category", "is_active", "sort_order"]
    list_filter = ["category"]


@admin.register(CtiItem)
class CtiItemAdmin(admin.ModelAdmin):
    list_display = ["name", "type", "is_active", "sort_order"]
    list_filter = ["type__category"]


class FilterRuleInline(admin.TabularInline):
    model = FilterRule
    extra = 1


@admin.register(Filter)
class FilterAdmin(admin.ModelAdmin):
    list_display = ["name", "sort_order", "is_active", "channel", "match", "stop_on_match"]
    inlines = [FilterRuleInline]


@admin.register(BannedAddress)
class BannedAddressAdmin(admin.ModelAdmin):
    list_display = ["address", "reason", "created_by", "created_at"]
    search_fields = ["address"]
    readonly_fields = ["created_by"]

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
