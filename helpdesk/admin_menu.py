"""The staff UI's admin menu: every admin screen, its permission and its URL name.

Screens live in their own apps (routing, accounts, tickets, sla, mailgate, api); this list
is the one place that puts them in order. An entry whose URL is not installed is skipped, and
an agent sees only the entries their role allows (`accounts.permissions.can`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.urls import NoReverseMatch, get_script_prefix, reverse
from django.utils.translation import gettext_lazy as _

from accounts import permissions


@dataclass(frozen=True)
class MenuItem:
    key: str
    title: str
    url_name: str
    permission: str


MENU: list[tuple[str, list[MenuItem]]] = [
    (
        _("Routing"),
        [
            MenuItem(
                "departments", _("Departments"), "staff_admin:department_list", "admin.routing"
            ),
            MenuItem("topics", _("Help topics"), "staff_admin:topic_list", "admin.routing"),
            MenuItem("cti", _("Categories (CTI)"), "staff_admin:cti", "admin.routing"),
            MenuItem("filters", _("Filters"), "staff_admin:filter_list", "admin.routing"),
            MenuItem("banned", _("Banned addresses"), "staff_admin:banned_list", "admin.routing"),
        ],
    ),
    (
        _("People"),
        [
            MenuItem("agents", _("Agents"), "staff_admin:agent_list", "admin.staff"),
            MenuItem("teams", _("Teams"), "staff_admin:team_list", "admin.staff"),
            MenuItem("roles", _("Roles"), "staff_admin:role_list", "admin.staff"),
        ],
    ),
    (
        _("Tickets"),
        [
            MenuItem("statuses", _("Statuses"), "staff_admin:status_list", "admin.settings"),
            MenuItem("priorities", _("Priorities"), "staff_admin:priority_list", "admin.settings"),
            MenuItem("sla_plans", _("SLA plans"), "sla_admin:plan_list", "admin.sla"),
            MenuItem("schedules", _("Schedules"), "sla_admin:schedule_list", "admin.sla"),
            MenuItem("canned", _("Canned responses"), "kb_admin:canned_list", "admin.settings"),
        ],
    ),
    (
        _("Email"),
        [
            MenuItem("mailboxes", _("Mailboxes"), "mail_admin:mailbox_list", "admin.email"),
            MenuItem("inbound", _("Incoming mail"), "mail_admin:inbound_list", "admin.email"),
            MenuItem("templates", _("Email templates"), "mail_admin:template_list", "admin.email"),
        ],
    ),
    (
        _("Automation"),
        [
            MenuItem("api_keys", _("API keys"), "api_admin:key_list", "admin.api"),
            MenuItem("webhooks", _("Webhooks"), "api_admin:webhook_list", "admin.api"),
        ],
    ),
    (
        _("System"),
        [
            MenuItem("settings", _("Settings"), "staff_admin:settings", "admin.settings"),
            MenuItem("log", _("Admin log"), "staff_admin:log", "admin.settings"),
        ],
    ),
]


@functools.lru_cache(maxsize=256)
def _reversed(name: str, prefix: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:
        return None


def menu_url(name: str) -> str | None:
    """The menu's URLs, reversed once per process (and script prefix): every staff page
    shows the menu."""
    return _reversed(name, get_script_prefix())


def admin_menu_for(user) -> list[dict]:  # type: ignore[no-untyped-def]
    """The menu groups and items `user` may open, with their URLs."""
    groups = []
    for title, items in MENU:
        allowed = []
        for item in items:
            if not permissions.can(user, item.permission):
                continue
            url = menu_url(item.url_name)
            if url is not None:
                allowed.append({"key": item.key, "title": item.title, "url": url})
        if allowed:
            groups.append({"title": title, "items": allowed})
    return groups
