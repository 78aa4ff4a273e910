"""Validation of the knowledge base's forms (the services do the saving)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from routing.models import Department, HelpTopic

from .canned import canned_template_check
from .models import Article, ArticleAttachment, CannedResponse, Category


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)

    def clean(self, data: object, initial: object = None) -> list:
        if not data:
            return []
        files = data if isinstance(data, list | tuple) else [data]
        return [super(MultipleFileField, self).clean(f, initial) for f in files]


class CategoryForm(forms.ModelForm):
    class Meta:
        model = Category
        fields = ["name", "parent", "description", "is_public", "sort_order"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        parents = Category.objects.order_by("name")
        if self.instance.pk:
            parents = parents.exclude(pk=self.instance.pk)
        self.fields["parent"].queryset = parents


class ArticleForm(forms.ModelForm):
    attachments = MultipleFileField(
        label=_("Add files"),
        help_text=_("Images can be shown in the text with the address listed after saving."),
    )
    remove_files = forms.ModelMultipleChoiceField(
        label=_("Remove files"),
        queryset=ArticleAttachment.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Article
        fields = ["title", "category", "body", "tags", "related_topics", "is_public", "status"]
        widgets = {
            "body": forms.Textarea(attrs={"rows": 16}),
            "related_topics": forms.SelectMultiple(attrs={"size": 5}),
        }

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].queryset = Category.objects.order_by("name")
        self.fields["related_topics"].queryset = HelpTopic.objects.filter(is_active=True)
        self.fields["related_topics"].required = False
        if self.instance.pk:
            self.fields["remove_files"].queryset = self.instance.attachments.all()
        else:
            del self.fields["remove_files"]

    def clean_tags(self) -> str:
        tags = [t.strip() for t in self.cleaned_data["tags"].split(",") if t.strip()]
        return ", ".join(dict.fromkeys(tags))


class PreviewForm(forms.Form):
    body = forms.CharField(required=False, max_length=200_000)


class CannedResponseForm(forms.ModelForm):
    class Meta:
        model = CannedResponse
        fields = ["title", "department", "body", "is_active"]
        widgets = {"body": forms.Textarea(attrs={"rows": 10})}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = Department.objects.order_by("name")

    def clean(self) -> dict:
        data = super().clean()
        if data.get("body"):
            try:
                canned_template_check(data["body"])
            except ValidationError as error:
                self.add_error("body", error.message_dict["body"])
        return data
