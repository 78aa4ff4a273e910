"""Admin screens of people: agents (invite, edit, extended access, teams, vacation) and roles
(a checkbox matrix of permission keys); and the page where an invited agent sets a password."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from helpdesk.views_admin import Screen, form_errors_apply, paginate

from .decorators import admin_required
from .forms_admin import AccessFormSet, AgentForm, AgentInviteForm, RoleForm
from .models import Agent, Role
from .services import agent_invite, agent_invite_send, agent_update, role_save


def _agents() -> object:
    return Agent.objects.select_related("user", "department", "role").order_by(
        "-is_active", "user__name", "user__email"
    )


@admin_required("admin.staff")
def agent_list(request: HttpRequest) -> HttpResponse:
    agents = _agents().prefetch_related("teams")
    search = request.GET.get("q", "").strip()[:100]
    if search:
        agents = agents.filter(Q(user__email__icontains=search) | Q(user__name__icontains=search))
    return render(
        request,
        "admin_screens/agent_list.html",
        {
            "page_obj": paginate(request, agents),
            "search": search,
            "admin_section": "agents",
            "nav_active": "admin",
        },
    )


@admin_required("admin.staff")
def agent_create(request: HttpRequest) -> HttpResponse:
    form = AgentInviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            agent = agent_invite(
                email=data["email"],
                name=data["name"],
                department=data["department"],
                role=data["role"],
                teams=list(data["teams"]),
                assigned_only=data["assigned_only"],
                actor=request.user,
                base_url=request.build_absolute_uri("/"),
            )
        except ValidationError as error:
            form_errors_apply(form, error)
        else:
            messages.success(
                request,
                _("%(name)s was invited; a link to set a password went to %(email)s.")
                % {"name": agent.user.get_full_name(), "email": agent.user.email},
            )
            return redirect("staff_admin:agent_list")
    return render(
        request,
        "admin_screens/agent_invite.html",
        {"form": form, "admin_section": "agents", "nav_active": "admin"},
    )


@admin_required("admin.staff")
def agent_edit(request: HttpRequest, pk: int) -> HttpResponse:
    agent = get_object_or_404(_agents(), pk=pk)
    if request.method == "POST":
        form = AgentForm(request.POST, instance=agent)
        access = AccessFormSet(request.POST, instance=agent, prefix="access")
        if form.is_valid() and access.is_valid():
            try:
                agent_update(form=form, access=access, actor=request.user)
            except ValidationError as error:
                form_errors_apply(form, error)
            else:
                messages.success(request, _("“%(name)s” was saved.") % {"name": agent})
                return redirect("staff_admin:agent_list")
    else:
        form = AgentForm(instance=agent)
        access = AccessFormSet(instance=agent, prefix="access")
    return render(
        request,
        "admin_screens/agent_form.html",
        {
            "form": form,
            "access": access,
            "object": agent,
            "admin_section": "agents",
            "nav_active": "admin",
        },
    )


@admin_required("admin.staff")
@require_POST
def agent_reinvite(request: HttpRequest, pk: int) -> HttpResponse:
    agent = get_object_or_404(_agents(), pk=pk)
    if agent.user.has_usable_password():
        messages.error(request, _("%(name)s has set a password already.") % {"name": agent})
    else:
        agent_invite_send(agent=agent, base_url=request.build_absolute_uri("/"))
        messages.success(request, _("A new link went to %(email)s.") % {"email": agent.user.email})
    return redirect("staff_admin:agent_edit", pk=agent.pk)


role = Screen(
    name="role",
    model=Role,
    form_class=RoleForm,
    permission="admin.staff",
    section="roles",
    title=gettext_lazy("Roles"),
    queryset=lambda: Role.objects.annotate(
        agent_count=Count("primary_agents", distinct=True),
        access_count=Count("extended_access", distinct=True),
    ).order_by("name"),
    list_template="admin_screens/role_list.html",
    form_template="admin_screens/role_form.html",
    save=role_save,
)


class PasswordSetView(auth_views.PasswordResetConfirmView):
    """Where the invitation link leads: the new agent chooses a password, then signs in."""

    template_name = "admin_screens/password_set.html"
    success_url = reverse_lazy("staff:login")
    post_reset_login = False

    def form_valid(self, form: object) -> HttpResponse:
        response = super().form_valid(form)  # type: ignore[arg-type]
        messages.success(self.request, _("Your password is set. Sign in with it."))
        return response


urlpatterns = [
    path("agents/", agent_list, name="agent_list"),
    path("agents/new/", agent_create, name="agent_create"),
    path("agents/<int:pk>/", agent_edit, name="agent_edit"),
    path("agents/<int:pk>/invite/", agent_reinvite, name="agent_reinvite"),
    *role.urlpatterns(),
]
