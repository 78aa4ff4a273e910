"""Forms of the routing admin screens: validation only (the models' `clean` holds the rules)."""

from __future__ import annotations

from django import forms
from django.db.models import Q
from django.forms import inlineformset_factory
from django.utils.translation import gettext_lazy as _

from accounts.models import Agent, User
from kb.models import CannedResponse
from tickets.models import Priority, Source, TicketStatus

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


def active_agents() -> object:
    return Agent.objects.filter(is_active=True, user__is_active=True).select_related("user")


def active_agent_users() -> object:
    return User.objects.filter(agent__is_active=True, is_active=True).order_by("name", "email")


class TreeNameChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: object) -> str:
        return obj.full_name  # type: ignore[attr-defined]


class DepartmentForm(forms.ModelForm):
    class Meta:
        model = Department
        fields = [
            "name",
            "parent",
            "is_public",
            "manager",
            "sla",
            "default_priority",
            "outgoing_mailbox",
            "auto_response",
            "auto_assign",
            "assign_members_only",
            "assign_primary_only",
            "disable_claim_on_reply",
            "disable_auto_assign_on_reopen",
            "signature",
        ]
        field_classes = {"parent": TreeNameChoiceField}
        widgets = {"signature": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        parents = Department.objects.select_related("parent__parent__parent")
        if self.instance.pk is not None:
            parents = parents.exclude(pk=self.instance.pk)
        self.fields["parent"].queryset = parents
        self.fields["manager"].queryset = active_agents()


class HelpTopicForm(forms.ModelForm):
    class Meta:
        model = HelpTopic
        fields = [
            "name",
            "parent",
            "is_public",
            "department",
            "priority",
            "sla",
            "assignee",
            "team",
            "auto_response",
        ]
        field_classes = {"parent": TreeNameChoiceField, "department": TreeNameChoiceField}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        parents = HelpTopic.objects.select_related("parent__parent__parent")
        if self.instance.pk is not None:
            parents = parents.exclude(pk=self.instance.pk)
        self.fields["parent"].queryset = parents
        self.fields["department"].queryset = Department.objects.filter(
            is_active=True
        ).select_related("parent__parent__parent")
        self.fields["assignee"].queryset = active_agent_users()
        self.fields["team"].queryset = Team.objects.filter(is_active=True)

    def clean(self) -> dict:
        data = super().clean()
        if data.get("assignee") and data.get("team"):
            raise forms.ValidationError(
                {"team": _("Assign new tickets to an agent or to a team, not both.")}
            )
        return data


class TeamForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ["name", "lead", "members"]
        widgets = {"members": forms.CheckboxSelectMultiple}
        help_texts = {"lead": _("The lead is always a member.")}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["lead"].queryset = active_agents()
        self.fields["members"].queryset = (
            Agent.objects.filter(user__is_active=True)
            .select_related("user")
            .order_by("user__name", "user__email")
        )

    def clean(self) -> dict:
        data = super().clean()
        lead, members = data.get("lead"), data.get("members")
        if lead is not None and members is not None and lead not in members:
            data["members"] = members | Agent.objects.filter(pk=lead.pk)
        return data


class CategoryForm(forms.ModelForm):
    class Meta:
        model = Category
        fields = ["name"]


class CtiTypeForm(forms.ModelForm):
    class Meta:
        model = CtiType
        fields = ["category", "name"]


class CtiItemForm(forms.ModelForm):
    class Meta:
        model = CtiItem
        fields = ["type", "name"]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["type"].queryset = CtiType.objects.select_related("category")
        self.fields["type"].label_from_instance = lambda obj: obj.full_name


class FilterForm(forms.ModelForm):
    class Meta:
        model = Filter
        fields = [
            "name",
            "channel",
            "match",
            "stop_on_match",
            "notes",
            "reject",
            "department",
            "priority",
            "status",
            "help_topic",
            "cti_item",
            "assignee",
            "team",
            "sla",
            "collaborator_email",
            "disable_auto_response",
            "canned_response",
        ]
        field_classes = {"department": TreeNameChoiceField, "help_topic": TreeNameChoiceField}
        widgets = {"notes": forms.Textarea(attrs={"rows": 2})}

    RULE_FIELDS = ("name", "channel", "match", "stop_on_match", "notes")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = Department.objects.filter(
            is_active=True
        ).select_related("parent__parent__parent")
        self.fields["help_topic"].queryset = HelpTopic.objects.filter(
            is_active=True
        ).select_related("parent__parent__parent")
        self.fields["cti_item"].queryset = CtiItem.objects.filter(
            is_active=True, type__is_active=True, type__category__is_active=True
        ).select_related("type__category")
        self.fields["cti_item"].label_from_instance = lambda obj: obj.full_name
        self.fields["assignee"].queryset = active_agent_users()
        self.fields["team"].queryset = Team.objects.filter(is_active=True)
        self.fields["priority"].queryset = Priority.objects.all()
        self.fields["status"].queryset = TicketStatus.objects.filter(state__in=["open", "closed"])
        # Active responses, and the one the filter has (archived since, it stays selectable).
        chosen = self.instance.canned_response_id
        current = Q(pk=chosen) if chosen is not None else Q()
        self.fields["canned_response"].queryset = (
            CannedResponse.objects.filter(Q(is_active=True) | current)
            .select_related("department")
            .order_by("title", "pk")
        )
        self.fields["canned_response"].label_from_instance = _canned_label

    def settings_fields(self) -> list:
        return [self[name] for name in self.RULE_FIELDS]

    def action_fields(self) -> list:
        return [self[name] for name in self.fields if name not in self.RULE_FIELDS]


def _canned_label(response: CannedResponse) -> str:
    if response.department_id is None:
        return response.title
    return f"{response.title} ({response.department})"


class FilterRuleForm(forms.ModelForm):
    class Meta:
        model = FilterRule
        fields = ["field", "header", "operator", "value"]


FilterRuleFormSet = inlineformset_factory(
    Filter,
    FilterRule,
    form=FilterRuleForm,
    extra=2,
    can_delete=True,
    max_num=50,
    validate_max=True,
)


class BannedAddressForm(forms.ModelForm):
    class Meta:
        model = BannedAddress
        fields = ["address", "reason"]
        widgets = {"reason": forms.Textarea(attrs={"rows": 2})}


class FilterTestForm(forms.Form):
    """A message to try the filters on: raw (pasted with its headers) or field by field."""

    raw = forms.CharField(
        label=_("Raw message"),
        required=False,
        max_length=1024 * 1024,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_("Paste a whole email with its headers; the fields below are then ignored."),
    )
    source = forms.ChoiceField(label=_("Channel"), choices=Source.choices, initial=Source.EMAIL)
    sender_email = forms.EmailField(label=_("Sender's email"), required=False)
    sender_name = forms.CharField(label=_("Sender's name"), required=False, max_length=150)
    to = forms.CharField(label=_("To"), required=False, help_text=_("Comma-separated."))
    cc = forms.CharField(label=_("Cc"), required=False, help_text=_("Comma-separated."))
    reply_to = forms.CharField(label=_("Reply-To"), required=False)
    subject = forms.CharField(label=_("Subject"), required=False, max_length=255)
    body = forms.CharField(
        label=_("Body"), required=False, widget=forms.Textarea(attrs={"rows": 4})
    )
    headers = forms.CharField(
        label=_("Other headers"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("One per line: Name: value"),
    )
    help_topic = TreeNameChoiceField(
        label=_("Help topic"), queryset=HelpTopic.objects.none(), required=False
    )
    organization = forms.CharField(label=_("Organization"), required=False, max_length=128)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["help_topic"].queryset = HelpTopic.objects.select_related(
            "parent__parent__parent"
        )

    def clean(self) -> dict:
        data = super().clean()
        if not data.get("raw", "").strip() and not any(
            data.get(name) for name in ("sender_email", "subject", "body", "to", "headers")
        ):
            raise forms.ValidationError(_("Paste a message or fill in some of its fields."))
        return data
