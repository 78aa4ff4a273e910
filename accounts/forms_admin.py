"""Forms of the people admin screens: agents (invite and edit) and roles."""

from __future__ import annotations

from django import forms
from django.db.models import Q
from django.forms import inlineformset_factory
from django.utils.translation import gettext_lazy as _

from routing.models import Department, Team

from .models import Agent, AgentDepartmentAccess, Role, normalize_email
from .permissions import PERMISSIONS
from .services import email_address_validate

PERMISSION_GROUPS = {
    "ticket": _("Tickets"),
    "task": _("Tasks"),
    "canned": _("Canned responses"),
    "thread": _("Threads"),
    "user": _("Customers"),
    "org": _("Organizations"),
    "kb": _("Knowledge base"),
    "emails": _("Email"),
    "visibility": _("Visibility"),
    "stats": _("Statistics"),
    "search": _("Search"),
    "admin": _("Administration"),
}


class DepartmentChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Department) -> str:
        return obj.full_name


def _departments(current: int | None = None) -> object:
    """Active departments, plus the one already chosen (it may have been archived since)."""
    condition = Q(is_active=True) | Q(pk=current) if current else Q(is_active=True)
    return Department.objects.filter(condition).select_related("parent__parent__parent")


def _teams_field() -> forms.ModelMultipleChoiceField:
    return forms.ModelMultipleChoiceField(
        label=_("Teams"),
        queryset=Team.objects.filter(is_active=True),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )


class AgentInviteForm(forms.Form):
    email = forms.EmailField(label=_("Email address"), max_length=254)
    name = forms.CharField(label=_("Name"), max_length=150)
    department = DepartmentChoiceField(label=_("Primary department"), queryset=Department.objects)
    role = forms.ModelChoiceField(label=_("Primary role"), queryset=Role.objects.all())
    teams = _teams_field()
    assigned_only = forms.BooleanField(
        label=_("Assigned tickets only"),
        required=False,
        help_text=_("Sees only the tickets assigned to them or to their teams."),
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = _departments()
        self.fields["teams"].queryset = Team.objects.filter(is_active=True)

    def clean_email(self) -> str:
        address = normalize_email(self.cleaned_data["email"])
        try:
            email_address_validate(address)
        except forms.ValidationError:
            raise forms.ValidationError(_("Enter a valid email address.")) from None
        return address


class AgentForm(forms.ModelForm):
    """An agent's profile; the user's name and the teams are edited with it."""

    name = forms.CharField(label=_("Name"), max_length=150)
    teams = _teams_field()

    class Meta:
        model = Agent
        fields = [
            "name",
            "department",
            "role",
            "teams",
            "is_active",
            "on_vacation",
            "assigned_only",
            "signature",
        ]
        field_classes = {"department": DepartmentChoiceField}
        widgets = {"signature": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = _departments(self.instance.department_id)
        self.fields["teams"].queryset = Team.objects.filter(is_active=True)
        if self.instance.pk is not None:
            self.initial["name"] = self.instance.user.name
            self.initial["teams"] = list(self.instance.teams.filter(is_active=True))


class AccessForm(forms.ModelForm):
    class Meta:
        model = AgentDepartmentAccess
        fields = ["department", "role"]
        field_classes = {"department": DepartmentChoiceField}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = _departments(self.instance.department_id)


class BaseAccessFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        primary = self.instance.department_id if self.instance.pk else None
        seen = set()
        for form in self.forms:
            if not getattr(form, "cleaned_data", None) or form.cleaned_data.get("DELETE"):
                continue
            department = form.cleaned_data.get("department")
            if department is None:
                continue
            if department.pk in seen:
                raise forms.ValidationError(_("Each department may be listed once."))
            if department.pk == primary:
                form.add_error(
                    "department", _("This is the primary department; its role is above.")
                )
            seen.add(department.pk)


AccessFormSet = inlineformset_factory(
    Agent,
    AgentDepartmentAccess,
    form=AccessForm,
    formset=BaseAccessFormSet,
    extra=2,
    can_delete=True,
)


class RoleForm(forms.ModelForm):
    permissions = forms.MultipleChoiceField(
        label=_("Permissions"),
        choices=list(PERMISSIONS.items()),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Role
        fields = ["name", "permissions", "notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 2})}

    def clean_permissions(self) -> list[str]:
        chosen = set(self.cleaned_data["permissions"])
        return [key for key in PERMISSIONS if key in chosen]

    def permission_groups(self) -> list[tuple[str, str, list]]:
        """(prefix, title, checkboxes) per permission prefix, in PERMISSIONS' order."""
        groups: dict[str, list] = {}
        for checkbox in self["permissions"]:
            prefix = str(checkbox.data["value"]).split(".")[0]
            groups.setdefault(prefix, []).append(checkbox)
        return [
            (prefix, str(PERMISSION_GROUPS.get(prefix, prefix.capitalize())), boxes)
            for prefix, boxes in groups.items()
        ]
