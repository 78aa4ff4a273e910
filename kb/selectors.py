"""Reading the knowledge base: what a user may see, and search.

Used by the portal, the staff UI and the REST API alike. Customers and anonymous visitors
see published, public articles in categories that are public all the way up; agents also
see internal articles and categories. Drafts appear only where a caller asks for them
(`include_drafts`, the staff list of writers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank, SearchVector
from django.db import connection
from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Replace
from django.http import Http404
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from accounts import permissions

from .models import Article, ArticleStatus, CannedResponse, Category, Deflection

if TYPE_CHECKING:
    from accounts.models import User
    from tickets.models import Ticket

SEARCH_CONFIG = "english"
# Marks put around matches by ts_headline; removed from the text first, so only ours remain.
_MARK_OPEN, _MARK_CLOSE = "\u27e6", "\u27e7"
SNIPPET_LENGTH = 200


def _sees_internal(user: User | None) -> bool:
    return user is not None and permissions.is_agent(user)


def categories_visible(*, user: User | None) -> QuerySet[Category]:
    """Categories the user may browse: for customers, public ones whose parents are public
    (one query to find them; categories are few)."""
    categories = Category.objects.all()
    if _sees_internal(user):
        return categories
    return categories.filter(pk__in=_public_category_ids())


def _public_category_ids() -> list[int]:
    rows = {pk: (parent, public) for pk, parent, public in Category.objects.values_list(
        "pk", "parent_id", "is_public"
    )}  # fmt: skip
    visible = []
    for pk in rows:
        node, seen, ok = pk, set(), True
        while node is not None and node not in seen:
            seen.add(node)
            parent, public = rows[node]
            if not public:
                ok = False
                break
            node = parent
        if ok:
            visible.append(pk)
    return visible


def articles_visible(*, user: User | None, include_drafts: bool = False) -> QuerySet[Article]:
    """Articles the user may read (drafts only with `include_drafts`, for agents)."""
    articles = Article.objects.all()
    internal = _sees_internal(user)
    if not (include_drafts and internal):
        articles = articles.filter(status=ArticleStatus.PUBLISHED)
    if not internal:
        articles = articles.filter(is_public=True, category_id__in=_public_category_ids())
    return articles


def article_get_for_user(*, user: User | None, slug: str, include_drafts: bool = False) -> Article:
    """The article with this slug, or 404 when it does not exist or the user may not read it
    (the same answer, so internal slugs cannot be probed)."""
    article = (
        articles_visible(user=user, include_drafts=include_drafts)
        .select_related("category", "author")
        .filter(slug=slug)
        .first()
    )
    if article is None:
        raise Http404("No such article.")
    return article


def category_get_for_user(*, user: User | None, slug: str) -> Category:
    category = categories_visible(user=user).filter(slug=slug).select_related("parent").first()
    if category is None:
        raise Http404("No such category.")
    return category


def category_article_counts(*, user: User | None) -> dict[int, int]:
    """Visible articles per category, in one grouped query."""
    rows = (
        articles_visible(user=user)
        .order_by()
        .values("category_id")
        .annotate(total=Count("pk"))
        .values_list("category_id", "total")
    )
    return dict(rows)


@dataclass
class CategoryNode:
    category: Category
    children: list[CategoryNode]
    count: int


def category_tree(*, user: User | None) -> list[CategoryNode]:
    """The visible categories as a tree, with their visible article counts (two queries)."""
    categories = list(categories_visible(user=user))
    counts = category_article_counts(user=user)
    nodes = {c.pk: CategoryNode(c, [], counts.get(c.pk, 0)) for c in categories}
    roots = []
    for category in categories:
        node = nodes[category.pk]
        parent = nodes.get(category.parent_id) if category.parent_id else None
        (parent.children if parent else roots).append(node)
    return roots


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def articles_search(queryset: QuerySet[Article], query: str) -> QuerySet[Article]:
    """The articles of `queryset` matching `query`, best first.

    PostgreSQL: full-text search (web-search syntax) on title (weight A), tags (B) and text
    (C), ordered by `SearchRank`, each with a `headline` (`ts_headline`). Elsewhere: every
    word must appear in the title, tags or text; title matches first. Use `snippet()` on a
    result for safe HTML."""
    query = " ".join(query.split())[:200]
    if not query:
        return queryset.none()
    if _is_postgres():
        search = SearchQuery(query, search_type="websearch", config=SEARCH_CONFIG)
        vector = (
            SearchVector("title", weight="A", config=SEARCH_CONFIG)
            + SearchVector("tags", weight="B", config=SEARCH_CONFIG)
            + SearchVector("body_text", weight="C", config=SEARCH_CONFIG)
        )
        text = Replace(
            Replace("body_text", Value(_MARK_OPEN), Value("")), Value(_MARK_CLOSE), Value("")
        )
        return (
            # Matching is `@@`, not rank > 0: ts_rank is positive for documents that fail a
            # negated word ("printer -laser").
            queryset.alias(search_vector=vector)
            .filter(search_vector=search)
            .annotate(search_rank=SearchRank(vector, search))
            .annotate(
                headline=SearchHeadline(
                    text,
                    search,
                    config=SEARCH_CONFIG,
                    start_sel=_MARK_OPEN,
                    stop_sel=_MARK_CLOSE,
                    max_words=35,
                    min_words=15,
                )
            )
            .order_by("-search_rank", "title", "pk")
        )
    words = query.split()[:10]
    condition = Q()
    for word in words:
        condition &= (
            Q(title__icontains=word) | Q(tags__icontains=word) | Q(body_text__icontains=word)
        )
    title_hits = sum(
        (Case(When(title__icontains=word, then=Value(1)), default=Value(0)) for word in words),
        Value(0),
    )
    return (
        queryset.filter(condition)
        .annotate(search_rank=Value(0, output_field=IntegerField()) + title_hits)
        .order_by("-search_rank", "title", "pk")
    )


def snippet(article: Article, query: str) -> SafeString:
    """A short, safe excerpt of a search result with the matched words in <mark>: the text is
    escaped first, then only our own <mark> tags are added."""
    headline = getattr(article, "headline", None)
    if headline:
        html = escape(headline)
        html = html.replace(_MARK_OPEN, "<mark>").replace(_MARK_CLOSE, "</mark>")
        return mark_safe(html)  # noqa: S308 - escaped above; only <mark> added
    text = article.body_text
    words = [w for w in query.split() if len(w) > 1][:10]
    lower = text.lower()
    positions = [lower.find(w.lower()) for w in words]
    start = min((p for p in positions if p >= 0), default=0)
    start = max(0, start - 60)
    excerpt = text[start : start + SNIPPET_LENGTH]
    prefix = "…" if start else ""
    suffix = "…" if start + SNIPPET_LENGTH < len(text) else ""
    html = escape(excerpt)
    if words:
        pattern = re.compile("|".join(re.escape(escape(w)) for w in words), re.IGNORECASE)
        html = pattern.sub(lambda m: f"<mark>{m.group(0)}</mark>", html)
    return mark_safe(f"{prefix}{html}{suffix}")  # noqa: S308 - escaped above; only <mark> added


def article_suggestions(*, user: User | None, text: str, limit: int = 5) -> list[Article]:
    """Articles matching what a customer types as a new ticket's subject. Any word may match
    (a subject is not a query), best first."""
    words = [w for w in re.findall(r"\w+", text)[:12] if len(w) > 2]
    if not words:
        return []
    visible = articles_visible(user=user).only("title", "slug", "body_text")
    if _is_postgres():
        return list(articles_search(visible, " or ".join(words))[:limit])
    condition = Q()
    for word in words:
        condition |= Q(title__icontains=word) | Q(tags__icontains=word)
    hits = sum(
        (Case(When(title__icontains=word, then=Value(1)), default=Value(0)) for word in words),
        Value(0),
    )
    return list(visible.filter(condition).annotate(hits=hits).order_by("-hits", "title")[:limit])


def article_list_for_staff(
    *, user: User, query: str = "", category: Category | None = None, status: str = ""
) -> QuerySet[Article]:
    """The staff list of articles: drafts included, with their category and author (one
    query per page), best match first when searching, else most recently updated first."""
    articles = (
        articles_visible(user=user, include_drafts=True)
        .select_related("category", "author")
        .defer("body", "body_html")
    )
    if category is not None:
        articles = articles.filter(category=category)
    if status:
        articles = articles.filter(status=status)
    if query:
        return articles_search(articles, query)
    return articles.order_by("-updated_at", "pk")


def article_get_for_staff(*, user: User, pk: int) -> Article:
    """An article by id for the staff pages, drafts included; 404 for others."""
    article = (
        articles_visible(user=user, include_drafts=True)
        .select_related("category", "author")
        .filter(pk=pk)
        .first()
    )
    if article is None:
        raise Http404("No such article.")
    return article


def articles_for_insert(*, user: User, query: str, limit: int = 8) -> list[Article]:
    """Articles an agent may insert into a reply: matching `query`, else the most viewed."""
    articles = articles_visible(user=user).select_related("category")
    if query:
        return list(articles_search(articles, query)[:limit])
    return list(articles.order_by("-views", "title", "pk")[:limit])


def article_ids_public(*, ids: list[int]) -> set[int]:
    """Which of these articles customers can read."""
    if not ids:
        return set()
    return set(articles_visible(user=None).filter(pk__in=ids).values_list("pk", flat=True))


def canned_responses_for_ticket(*, ticket: Ticket, query: str = "") -> QuerySet[CannedResponse]:
    """Active canned responses usable on this ticket: global ones and its department's."""
    responses = CannedResponse.objects.filter(is_active=True).filter(
        Q(department__isnull=True) | Q(department_id=ticket.department_id)
    )
    for word in query.split()[:10]:
        responses = responses.filter(Q(title__icontains=word) | Q(body__icontains=word))
    return responses.order_by("title", "pk")


def canned_responses_for_user(*, user: User) -> QuerySet[CannedResponse]:
    """The canned responses `user` may read (the REST API's list): admins holding
    `admin.settings` see every one, other agents the global ones and those of the
    departments they work in (primary or extended access); customers none."""
    responses = CannedResponse.objects.select_related("department").order_by("title", "pk")
    if permissions.can(user, "admin.settings"):
        return responses
    scope = permissions.agent_scope(user)
    if scope is None:
        return responses.none()
    return responses.filter(
        Q(department__isnull=True) | Q(department_id__in=list(scope.roles_by_department))
    )


def canned_response_get(*, pk: int, active: bool = True) -> CannedResponse | None:
    """One canned response by id (only an active one unless `active` is False), or None."""
    responses = CannedResponse.objects.filter(pk=pk)
    if active:
        responses = responses.filter(is_active=True)
    return responses.first()


def article_stats() -> QuerySet[Article]:
    """Every article with its counters and its deflections (opened from the new-ticket
    suggestions without a ticket filed after), most viewed first, in one query."""
    return (
        Article.objects.select_related("category")
        .defer("body", "body_html", "body_text")
        .annotate(
            deflected=Count("deflections", filter=Q(deflections__ticket__isnull=True)),
            suggested=Count("deflections"),
        )
        .order_by("-views", "title", "pk")
    )


def deflections_total() -> dict[str, int]:
    return Deflection.objects.aggregate(
        opened=Count("pk"), deflected=Count("pk", filter=Q(ticket__isnull=True))
    )
