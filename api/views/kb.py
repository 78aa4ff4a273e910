"""REST API v1: canned responses (agents read, admins write) and the knowledge base (read).

Canned responses are saved through `kb.services`, which checks the template and records the
admin log, exactly as the admin screen does. The knowledge base is read through
`kb.selectors`: customers see published, public articles in public categories; agents also
see internal ones.
"""

from __future__ import annotations

import copy
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, pagination, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from helpdesk.adminlog import object_snapshot
from kb import selectors as kb_selectors
from kb import services as kb_services
from kb.canned import canned_render, canned_template_check
from kb.models import Article, ArticleAttachment, CannedResponse, Category
from tickets import selectors as ticket_selectors

from ..exceptions import BodyLimitMixin, Conflict, django_errors
from ..schema import ERRORS
from .config import CleanModelSerializer, ConfigViewSet

# --- canned responses -----------------------------------------------------------------------


class CannedResponseSerializer(CleanModelSerializer):
    class Meta:
        model = CannedResponse
        fields = ("id", "title", "body", "department", "is_active", "created_at", "updated_at")
        read_only_fields = ("id", "created_at", "updated_at")

    def validate_body(self, value: str) -> str:
        try:
            canned_template_check(value)
        except DjangoValidationError as error:
            raise serializers.ValidationError(django_errors(error)["body"]) from None
        return value


class CannedRenderQuerySerializer(serializers.Serializer):
    ticket = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, help_text="The ticket whose variables fill the text."
    )


class CannedRenderedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    text = serializers.CharField(
        help_text="The body with the ticket's and the key user's variables filled in (markdown)."
    )


def _changes(before: dict[str, list], after: dict[str, list]) -> dict[str, list]:
    """{field: [before, after]} between two `object_snapshot(..., after=True)` results."""
    names = dict.fromkeys([*before, *after])
    old = {name: pair[1] for name, pair in before.items()}
    new = {name: pair[1] for name, pair in after.items()}
    return {
        name: [old.get(name), new.get(name)] for name in names if old.get(name) != new.get(name)
    }


@extend_schema_view(
    list=extend_schema(
        tags=["configuration"], responses={200: CannedResponseSerializer(many=True), **ERRORS}
    ),
    retrieve=extend_schema(
        tags=["configuration"], responses={200: CannedResponseSerializer, **ERRORS}
    ),
    create=extend_schema(
        tags=["configuration"], responses={201: CannedResponseSerializer, **ERRORS}
    ),
    partial_update=extend_schema(
        tags=["configuration"], responses={200: CannedResponseSerializer, **ERRORS}
    ),
    destroy=extend_schema(tags=["configuration"], responses={204: None, **ERRORS}),
)
class CannedResponseViewSet(ConfigViewSet):
    """Canned responses: agents read the global ones and their departments' ones; admins
    (`admin.settings`, as on the admin screen) read and write all."""

    serializer_class = CannedResponseSerializer
    queryset = CannedResponse.objects.none()
    write_permission = "admin.settings"

    def get_queryset(self) -> QuerySet[CannedResponse]:
        return kb_selectors.canned_responses_for_user(user=self.request.user)

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        response = CannedResponse(**serializer.validated_data)
        serializer.instance = kb_services.canned_response_save(
            response=response, by=self.request.user
        )

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        response = serializer.instance
        before = object_snapshot(copy.copy(response), after=True)
        for name, value in serializer.validated_data.items():
            setattr(response, name, value)
        changes = _changes(before, object_snapshot(response, after=True))
        serializer.instance = kb_services.canned_response_save(
            response=response, by=self.request.user, changes=changes
        )

    def perform_destroy(self, instance: CannedResponse) -> None:
        try:
            kb_services.canned_response_delete(response=instance, by=self.request.user)
        except DjangoValidationError as error:
            # A filter still answers with it: archive it instead.
            raise Conflict(" ".join(error.messages)) from None

    @extend_schema(
        tags=["configuration"],
        summary="The canned response's text for one ticket",
        parameters=[CannedRenderQuerySerializer],
        responses={200: CannedRenderedSerializer, **ERRORS},
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def render(self, request: Request, pk: str) -> Response:
        response = self.get_object()
        query = CannedRenderQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        ticket = ticket_selectors.ticket_get_by_id_for_user(
            user=request.user, ticket_id=query.validated_data["ticket"]
        )
        usable = kb_selectors.canned_responses_for_ticket(ticket=ticket).filter(pk=response.pk)
        if not usable.exists():
            raise serializers.ValidationError(
                {"ticket": [_("This canned response is not available on this ticket.")]}
            )
        text = canned_render(response.body, ticket=ticket, agent=request.user)
        return Response({"id": response.pk, "title": response.title, "text": text})


# --- knowledge base -------------------------------------------------------------------------


class KbPagination(pagination.PageNumberPagination):
    """Numbered pages: search results are ordered by relevance, which a cursor cannot
    follow. The knowledge base is small enough for the count."""

    page_size = 20
    max_page_size = 100
    page_size_query_param = "page_size"


class KbCategoryRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ("id", "slug", "name")
        read_only_fields = fields


class KbCategorySerializer(serializers.ModelSerializer):
    article_count = serializers.SerializerMethodField(
        help_text="Published articles in this category that the user may read."
    )

    class Meta:
        model = Category
        fields = (
            "id",
            "slug",
            "name",
            "parent",
            "description",
            "is_public",
            "sort_order",
            "article_count",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

    def get_article_count(self, category: Category) -> int:
        return self.context.get("counts", {}).get(category.pk, 0)


class KbArticleFileSerializer(serializers.ModelSerializer):
    url = serializers.CharField(source="get_absolute_url", read_only=True)

    class Meta:
        model = ArticleAttachment
        fields = ("id", "name", "content_type", "size", "url")
        read_only_fields = fields


class KbArticleSerializer(serializers.ModelSerializer):
    category = KbCategoryRefSerializer(read_only=True)
    tags = serializers.ListField(source="tag_list", child=serializers.CharField(), read_only=True)
    url = serializers.CharField(
        source="get_absolute_url", read_only=True, help_text="The article in the portal."
    )

    class Meta:
        model = Article
        fields = (
            "id",
            "slug",
            "title",
            "category",
            "tags",
            "is_public",
            "url",
            "published_at",
            "updated_at",
        )
        read_only_fields = fields


class KbArticleDetailSerializer(KbArticleSerializer):
    body = serializers.CharField(read_only=True, help_text="Markdown, as written.")
    body_html = serializers.CharField(read_only=True, help_text="Sanitised HTML of the body.")
    attachments = KbArticleFileSerializer(many=True, read_only=True)

    class Meta(KbArticleSerializer.Meta):
        fields = (*KbArticleSerializer.Meta.fields, "body", "body_html", "attachments")
        read_only_fields = fields


class KbArticleQuerySerializer(serializers.Serializer):
    search = serializers.CharField(
        required=False,
        max_length=200,
        help_text="Words to find in the title, tags and text; the best matches come first.",
    )
    category = serializers.SlugField(
        required=False, max_length=140, help_text="The slug of a category."
    )


class KbReadViewSet(BodyLimitMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Any signed-in user (agent or customer) reads what `kb.selectors` lets them see."""

    pagination_class = KbPagination
    lookup_field = "slug"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"


@extend_schema_view(
    list=extend_schema(
        tags=["knowledge base"], responses={200: KbCategorySerializer(many=True), **ERRORS}
    ),
)
class KbCategoryViewSet(KbReadViewSet):
    """Knowledge base categories the user may browse, with their visible article counts."""

    serializer_class = KbCategorySerializer

    def get_queryset(self) -> QuerySet[Category]:
        return kb_selectors.categories_visible(user=self.request.user).order_by(
            "sort_order", "name", "pk"
        )

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        if self.action in ("list", "retrieve"):
            context["counts"] = kb_selectors.category_article_counts(user=self.request.user)
        return context

    @extend_schema(tags=["knowledge base"], responses={200: KbCategorySerializer, **ERRORS})
    def retrieve(self, request: Request, slug: str) -> Response:
        category = kb_selectors.category_get_for_user(user=request.user, slug=slug)
        return Response(self.get_serializer(category).data)


@extend_schema_view(
    list=extend_schema(
        tags=["knowledge base"],
        parameters=[KbArticleQuerySerializer],
        responses={200: KbArticleSerializer(many=True), **ERRORS},
    ),
)
class KbArticleViewSet(KbReadViewSet):
    """Published knowledge base articles the user may read: public ones for customers,
    internal ones too for agents. `search` orders by relevance, else by title."""

    serializer_class = KbArticleSerializer

    def get_queryset(self) -> QuerySet[Article]:
        query = KbArticleQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        articles = (
            kb_selectors.articles_visible(user=self.request.user)
            .select_related("category")
            .defer("body", "body_html")
        )
        category = query.validated_data.get("category")
        if category:
            articles = articles.filter(category__slug=category)
        search = query.validated_data.get("search", "").strip()
        if search:
            return kb_selectors.articles_search(articles, search)
        return articles.defer("body_text").order_by("title", "pk")

    @extend_schema(tags=["knowledge base"], responses={200: KbArticleDetailSerializer, **ERRORS})
    def retrieve(self, request: Request, slug: str) -> Response:
        article = kb_selectors.article_get_for_user(user=request.user, slug=slug)
        return Response(KbArticleDetailSerializer(article).data)
