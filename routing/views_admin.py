"""Admin screens of routing: departments, help topics, teams, CTI, filters (with the test
box) and banned addresses. The plain list/create/edit/archive/reorder/delete views come from
`helpdesk.views_admin.Screen`; filters add their rules formset and the test box."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import Count, Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.decorators import admin_required
from helpdesk.views_admin import Screen, form_errors_apply, paginate
from kb.selectors import canned_response_get

from .forms import (
    BannedAddressForm,
    CategoryForm,
    CtiItemForm,
    CtiTypeForm,
    DepartmentForm,
    FilterForm,
    FilterRuleFormSet,
    FilterTestForm,
    HelpTopicForm,
    TeamForm,
)
from .models import (
    BannedAddress,
    Category,
    CtiItem,
    CtiType,
    Department,
    Filter,
    HelpTopic,
    Team,
)
from .services import banned_address_save, filter_save, filters_try

MAX_RAW_MESSAGE = 1024 * 1024


def tree_paths(model: type[Department] | type[HelpTopic]) -> dict[int, str]:
    """Every node's "Parent / Child" name, from one query (however deep the tree)."""
    rows = {
        pk: (name, parent)
        for pk, name, parent in model.objects.values_list("pk", "name", "parent_id")
    }
    paths: dict[int, str] = {}
    for pk in rows:
        names, node, seen = [], pk, set()
        while node is not None and node in rows and node not in seen:
            seen.add(node)
            names.append(rows[node][0])
            node = rows[node][1]
        paths[pk] = " / ".join(reversed(names))
    return paths


def _decorate_tree(model: type[Department] | type[HelpTopic]) -> Any:
    def decorate(objects: list) -> None:
        if objects:
            paths = tree_paths(model)
            for obj in objects:
                obj.path = paths.get(obj.pk, obj.name)

    return decorate


department = Screen(
    name="department",
    model=Department,
    form_class=DepartmentForm,
    permission="admin.routing",
    section="departments",
    title=gettext_lazy("Departments"),
    queryset=lambda: Department.objects.select_related("manager__user", "default_priority"),
    list_template="admin_screens/department_list.html",
    archive=True,
    decorate=_decorate_tree(Department),
    search_fields=("name",),
)

topic = Screen(
    name="topic",
    model=HelpTopic,
    form_class=HelpTopicForm,
    permission="admin.routing",
    section="topics",
    title=gettext_lazy("Help topics"),
    queryset=lambda: HelpTopic.objects.select_related("department", "priority", "assignee", "team"),
    list_template="admin_screens/topic_list.html",
    archive=True,
    move=True,
    siblings=lambda obj: HelpTopic.objects.all(),
    decorate=_decorate_tree(HelpTopic),
)

team = Screen(
    name="team",
    model=Team,
    form_class=TeamForm,
    permission="admin.staff",
    section="teams",
    title=gettext_lazy("Teams"),
    queryset=lambda: (
        Team.objects.select_related("lead__user")
        .annotate(member_count=Count("members", distinct=True))
        .order_by("name")
    ),
    list_template="admin_screens/team_list.html",
    archive=True,
)

category = Screen(
    name="category",
    model=Category,
    form_class=CategoryForm,
    permission="admin.routing",
    section="cti",
    title=gettext_lazy("CTI categories"),
    queryset=lambda: Category.objects.all(),
    list_template="admin_screens/cti.html",
    list_url_name="staff_admin:cti",
    url_path="cti/categories",
    archive=True,
    move=True,
    siblings=lambda obj: Category.objects.all(),
)

cti_type = Screen(
    name="ctitype",
    model=CtiType,
    form_class=CtiTypeForm,
    permission="admin.routing",
    section="cti",
    title=gettext_lazy("CTI types"),
    queryset=lambda: CtiType.objects.select_related("category"),
    list_template="admin_screens/cti.html",
    list_url_name="staff_admin:cti",
    url_path="cti/types",
    archive=True,
    move=True,
    siblings=lambda obj: CtiType.objects.filter(category_id=obj.category_id),
)

cti_item = Screen(
    name="ctiitem",
    model=CtiItem,
    form_class=CtiItemForm,
    permission="admin.routing",
    section="cti",
    title=gettext_lazy("CTI items"),
    queryset=lambda: CtiItem.objects.select_related("type__category"),
    list_template="admin_screens/cti.html",
    list_url_name="staff_admin:cti",
    url_path="cti/items",
    archive=True,
    move=True,
    siblings=lambda obj: CtiItem.objects.filter(type_id=obj.type_id),
)

banned = Screen(
    name="banned",
    model=BannedAddress,
    form_class=BannedAddressForm,
    permission="admin.routing",
    section="banned",
    title=gettext_lazy("Banned addresses"),
    queryset=lambda: BannedAddress.objects.select_related("created_by"),
    list_template="admin_screens/banned_list.html",
    url_path="banned",
    save=banned_address_save,
    search_fields=("address", "reason"),
)


@admin_required("admin.routing")
def cti(request: HttpRequest) -> HttpResponse:
    """Categories, each with its types and their items: a fixed number of queries a page."""
    categories = Category.objects.prefetch_related(
        Prefetch("types", queryset=CtiType.objects.prefetch_related("items"))
    )
    return render(
        request,
        "admin_screens/cti.html",
        {
            "page_obj": paginate(request, categories, 25),
            "admin_section": "cti",
            "nav_active": "admin",
            "category_screen": category,
            "type_screen": cti_type,
            "item_screen": cti_item,
        },
    )


class FilterScreen(Screen):
    """Filters: the form holds the settings and actions, a formset the rules."""

    def form_view(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        obj = self.get(pk) if pk is not None else None
        if request.method == "POST":
            form = FilterForm(request.POST, instance=obj)
            rules = FilterRuleFormSet(request.POST, instance=obj or Filter(), prefix="rules")
            if form.is_valid() and rules.is_valid():
                from django.core.exceptions import ValidationError

                try:
                    saved = filter_save(form=form, rules=rules, actor=request.user)
                except ValidationError as error:
                    form_errors_apply(form, error)
                else:
                    messages.success(request, _("“%(name)s” was saved.") % {"name": saved})
                    if not saved.rules.exists():
                        messages.warning(
                            request, _("This filter has no rules yet, so it never matches.")
                        )
                    return redirect(self.list_url)
        else:
            form = FilterForm(instance=obj)
            rules = FilterRuleFormSet(instance=obj or Filter(), prefix="rules")
        return render(
            request,
            "admin_screens/filter_form.html",
            self.context(form=form, rules=rules, object=obj),
        )


filter_screen = FilterScreen(
    name="filter",
    model=Filter,
    form_class=FilterForm,
    permission="admin.routing",
    section="filters",
    title=gettext_lazy("Filters"),
    queryset=lambda: (
        Filter.objects.select_related(
            "department", "priority", "status", "help_topic", "team", "assignee", "canned_response"
        )
        .annotate(rule_count=Count("rules"))
        .order_by("sort_order", "pk")
    ),
    list_template="admin_screens/filter_list.html",
    archive=True,
    move=True,
    siblings=lambda obj: Filter.objects.all(),
)


def _split(text: str) -> list[str]:
    return [item.strip() for item in (text or "").replace(";", ",").split(",") if item.strip()]


def _draft_from_raw(raw: str) -> Any:
    from mailgate.parsing import ParseError, parse_message
    from tickets.models import Source
    from tickets.services import TicketDraft

    try:
        parsed = parse_message(raw.encode("utf-8", "surrogateescape"), max_size=MAX_RAW_MESSAGE)
    except ParseError as error:
        return str(error)
    headers: dict[str, list[str]] = {}
    for name, value in parsed.raw_headers:
        headers.setdefault(name.lower(), []).append(value)
    return TicketDraft(
        subject=parsed.subject,
        body=parsed.body_text or parsed.body_html,
        email=parsed.from_email,
        name=parsed.from_name,
        source=Source.EMAIL,
        headers=headers,
        to=list(parsed.to),
        cc=list(parsed.cc),
        reply_to=parsed.reply_to[0] if parsed.reply_to else "",
    )


def _draft_from_fields(data: dict) -> Any:
    from tickets.services import TicketDraft

    headers: dict[str, list[str]] = {}
    for line in (data.get("headers") or "").splitlines()[:200]:
        name, colon, value = line.partition(":")
        if colon and name.strip():
            headers.setdefault(name.strip().lower(), []).append(value.strip())
    return TicketDraft(
        subject=data.get("subject") or "",
        body=data.get("body") or "",
        email=(data.get("sender_email") or "").lower(),
        name=data.get("sender_name") or "",
        source=data["source"],
        help_topic=data.get("help_topic"),
        headers=headers,
        to=_split(data.get("to", "")),
        cc=_split(data.get("cc", "")),
        reply_to=data.get("reply_to") or "",
    )


@admin_required("admin.routing")
def filter_test(request: HttpRequest) -> HttpResponse:
    """Try the active filters on a pasted message or on fields: which filter matches and what
    it would do. Nothing is stored and no ticket is opened."""
    result = rows = draft = canned_reply = None
    if request.method == "POST":
        form = FilterTestForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            draft = _draft_from_raw(data["raw"]) if data["raw"].strip() else None
            if isinstance(draft, str):
                form.add_error("raw", _("This is not a usable message: %s") % draft)
                draft = None
            elif draft is None:
                draft = _draft_from_fields(data)
            if draft is not None:
                result, rows = filters_try(draft, organization=data.get("organization") or "")
                if result.canned_response_id is not None:
                    canned_reply = canned_response_get(pk=result.canned_response_id, active=False)
    else:
        form = FilterTestForm()
    return render(
        request,
        "admin_screens/filter_test.html",
        {
            "form": form,
            "result": result,
            "rows": rows,
            "draft": draft,
            "canned_reply": canned_reply,
            "admin_section": "filters",
            "nav_active": "admin",
        },
    )


urlpatterns = [
    *department.urlpatterns(),
    *topic.urlpatterns(),
    *team.urlpatterns(),
    path("cti/", cti, name="cti"),
    *category.urlpatterns(),
    *cti_type.urlpatterns(),
    *cti_item.urlpatterns(),
    path("filters/test/", filter_test, name="filter_test"),
    *filter_screen.urlpatterns(),
    *banned.urlpatterns(),
]
