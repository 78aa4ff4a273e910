"""Django's admin is emergency access for superusers; the help desk is run from /scp/."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .models import (
    Agent,
    AgentDepartmentAccess,
    Organization,
    OrganizationDomain,
    Role,
    User,
    UserEmail,
)


class UserEmailInline(admin.TabularInline):
    model = UserEmail
    extra = 0


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "organization", "is_active", "is_superuser"]
    search_fields = ["email", "name"]
    list_filter = ["is_active", "is_superuser"]
    list_select_related = ["organization"]
    inlines = [UserEmailInline]
    fieldsets = [
        (None, {"fields": ["email", "password", "name", "organization", "timezone", "language"]}),
        ("Access", {"fields": ["is_active", "is_staff", "is_superuser"]}),
    ]
    add_fieldsets = [(None, {"fields": ["email", "name", "password1", "password2"]})]


class OrganizationDomainInline(admin.TabularInline):
    model = OrganizationDomain
    extra = 0


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "share_tickets"]
    search_fields = ["name"]
    inlines = [OrganizationDomainInline]


class AgentDepartmentAccessInline(admin.TabularInline):
    model = AgentDepartmentAccess
    extra = 0


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ["user", "department", "role", "is_active", "on_vacation"]
    list_select_related = ["user", "department", "role"]
    inlines = [AgentDepartmentAccessInline]


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin):
    list_display = ["name"]
