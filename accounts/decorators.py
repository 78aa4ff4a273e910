"""View decorators for the staff UI: who may open a staff page at all.

What an agent may do on a given ticket or department is still decided by
`accounts.permissions.can` inside the view or service; these only guard the door.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _

from . import permissions

View = Callable[..., HttpResponse]


def agent_required(view: View) -> View:
    """Signed-in agents only: others go to the staff sign-in, customers to the portal."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("staff:login"))
        if not permissions.is_agent(user):
            messages.error(request, _("The staff pages are for agents."))
            return redirect("portal:home")
        return view(request, *args, **kwargs)

    return wrapper


def admin_required(permission: str) -> Callable[[View], View]:
    """Agents whose role holds the admin `permission` (e.g. "admin.routing"); other agents
    get 403."""
    if permission not in permissions.PERMISSIONS:
        raise ValueError(f"Unknown permission {permission!r}")

    def decorator(view: View) -> View:
        @wraps(view)
        def guarded(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            if not permissions.can(request.user, permission):
                raise PermissionDenied(_("Your role does not allow this."))
            return view(request, *args, **kwargs)

        return agent_required(guarded)

    return decorator
