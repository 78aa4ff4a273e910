from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts import permissions
from helpdesk.config import config


def site(request: HttpRequest) -> dict[str, str]:
    # Lazy: pages that never print the name do not read the settings.
    return {"HELPDESK_TITLE": SimpleLazyObject(lambda: config().helpdesk_name)}


def staff_nav(request: HttpRequest) -> dict[str, object]:
    """The staff header's links and the admin menu, for agents; evaluated only when a
    template uses them, so portal pages pay nothing."""
    from .admin_menu import admin_menu_for, menu_url

    user = getattr(request, "user", None)

    def menu() -> list[dict]:
        if user is None or not permissions.is_agent(user):
            return []
        return admin_menu_for(user)

    def nav() -> dict[str, str | None]:
        if user is None or not permissions.is_agent(user):
            return {}
        groups = admin_menu
        admin = menu_url("staff_admin:index") if groups else None
        if groups and admin is None:
            admin = groups[0]["items"][0]["url"]
        return {
            "tickets": menu_url("tickets_staff:queue_default"),
            "search": menu_url("tickets_staff:queue_default"),
            "kb": menu_url("kb_staff:article_list"),
            "admin": admin,
        }

    admin_menu = SimpleLazyObject(menu)
    return {"staff_nav": SimpleLazyObject(nav), "admin_menu": admin_menu}
