from django.contrib import admin

from .models import Department, HelpTopic, Team


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ["name", "parent", "is_active", "is_public"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "lead", "is_active"]
    filter_horizontal = ["members"]


@admin.register(HelpTopic)
class HelpTopicAdmin(admin.ModelAdmin):
    list_display = ["name", "parent", "department", "priority", "is_public", "is_active"]
