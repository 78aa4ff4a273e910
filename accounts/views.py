"""Sign-in and the two entry points: the customer portal's home and the staff home."""

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.translation import gettext as _

from tickets.models import StatusState
from tickets.selectors import ticket_list_for_user

from . import permissions
from .forms import PortalLoginForm, StaffLoginForm


def portal_home(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/home.html")


class PortalLoginView(auth_views.LoginView):
    template_name = "portal/login.html"
    authentication_form = PortalLoginForm
    redirect_authenticated_user = True


class StaffLoginView(auth_views.LoginView):
    template_name = "staff/login.html"
    authentication_form = StaffLoginForm
    redirect_authenticated_user = False
    next_page = reverse_lazy("staff:home")


def staff_home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect(f"{reverse_lazy('staff:login')}?next={request.path}")
    if not permissions.is_agent(request.user):
        messages.error(request, _("The staff pages are for agents."))
        return redirect("portal:home")
    counts = ticket_list_for_user(user=request.user).aggregate(
        open=Count("pk", filter=Q(status__state=StatusState.OPEN)),
        mine=Count("pk", filter=Q(status__state=StatusState.OPEN, assignee=request.user)),
        unassigned=Count(
            "pk",
            filter=Q(status__state=StatusState.OPEN, assignee__isnull=True, team__isnull=True),
        ),
        overdue=Count("pk", filter=Q(status__state=StatusState.OPEN, is_overdue=True)),
    )
    return render(request, "staff/home.html", {"counts": counts})
