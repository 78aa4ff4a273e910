"""The portal's knowledge base (`/kb/`): browse, read, search, "was this helpful?", the
new-ticket form's suggestions, and article files."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts import permissions
from helpdesk.lib.files import RASTER_IMAGE_TYPES

from . import selectors, services
from .models import ArticleAttachment

PAGE_SIZE = 20
FILE_CSP = "default-src 'none'; sandbox"
_ACTIVE_TYPE_MARKERS = ("html", "xml", "svg", "javascript", "ecmascript", "x-sh")
SUGGESTED_SESSION_KEY = "kb_suggest_email"


def _session_key(request: HttpRequest) -> str:
    if not request.session.session_key:
        request.session.save()
    return request.session.session_key or ""


def _page(request: HttpRequest, queryset: object) -> object:
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    tree = selectors.category_tree(user=request.user)
    popular = (
        selectors.articles_visible(user=request.user)
        .only("title", "slug")
        .order_by("-views", "title")[:8]
    )
    return render(
        request, "kb/portal/index.html", {"tree": tree, "popular": popular, "nav_active": "kb"}
    )


@require_GET
def category(request: HttpRequest, slug: str) -> HttpResponse:
    current = selectors.category_get_for_user(user=request.user, slug=slug)
    children = selectors.categories_visible(user=request.user).filter(parent=current)
    articles = (
        selectors.articles_visible(user=request.user)
        .filter(category=current)
        .only("title", "slug", "updated_at", "body_text")
        .order_by("title", "pk")
    )
    return render(
        request,
        "kb/portal/category.html",
        {
            "category": current,
            "children": children,
            "page": _page(request, articles),
            "nav_active": "kb",
        },
    )


@require_GET
def article(request: HttpRequest, slug: str) -> HttpResponse:
    item = selectors.article_get_for_user(user=request.user, slug=slug)
    services.article_view_record(article=item, session=request.session)
    if request.GET.get("from") == "suggest" and not permissions.is_agent(request.user):
        services.deflection_candidate_record(
            article=item,
            session_key=_session_key(request),
            user=request.user,
            email=request.session.get(SUGGESTED_SESSION_KEY, ""),
        )
    return render(
        request,
        "kb/portal/article.html",
        {
            "article": item,
            "files": item.attachments.all(),
            "voted": services.article_voted(
                article=item, user=request.user, session_key=request.session.session_key
            ),
            "nav_active": "kb",
        },
    )


@require_GET
def search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:200]
    page = None
    if query:
        results = selectors.articles_search(
            selectors.articles_visible(user=request.user).select_related("category"), query
        )
        page = _page(request, results)
        for item in page:
            item.snippet = selectors.snippet(item, query)
    return render(
        request,
        "kb/portal/search.html",
        {"query": query, "page": page, "params": urlencode({"q": query}), "nav_active": "kb"},
    )


@require_POST
def vote(request: HttpRequest, slug: str) -> HttpResponse:
    item = selectors.article_get_for_user(user=request.user, slug=slug)
    answer = request.POST.get("helpful")
    if answer not in ("yes", "no"):
        return HttpResponse(_("Answer yes or no."), status=400)
    counted = services.article_vote(
        article=item,
        helpful=answer == "yes",
        user=request.user,
        session_key=_session_key(request),
    )
    if request.htmx:
        return render(request, "kb/portal/_partials/vote.html", {"article": item, "voted": True})
    if counted:
        messages.success(request, _("Thank you for your answer."))
    else:
        messages.info(request, _("You have already answered for this article."))
    return redirect(item.get_absolute_url())


@require_GET
def suggest(request: HttpRequest) -> HttpResponse:
    """Articles matching a new ticket's subject as the customer types it (the new-ticket form
    asks with htmx); the address they typed is kept in the session to match a later ticket
    (see `services.deflections_filed`)."""
    text = request.GET.get("subject", request.GET.get("q", ""))[:255]
    email = request.GET.get("email", "").strip()[:254]
    if email and "@" in email:
        request.session[SUGGESTED_SESSION_KEY] = email
    articles = selectors.article_suggestions(user=request.user, text=text)
    return render(request, "kb/portal/_partials/suggestions.html", {"articles": articles})


def _served_type(content_type: str, *, inline: bool) -> str:
    content_type = (content_type or "").split(";")[0].strip().lower()
    if inline:
        return content_type
    if (
        not content_type
        or "/" not in content_type
        or any(marker in content_type for marker in _ACTIVE_TYPE_MARKERS)
    ):
        return "application/octet-stream"
    return content_type


@require_GET
def attachment(request: HttpRequest, pk: int, filename: str) -> HttpResponse:
    """An article's file, for those who may read the article (404 otherwise: ids cannot be
    probed). Raster images inline, everything else downloaded; nosniff and a sandboxing CSP on
    every file, as for ticket attachments."""
    item = get_object_or_404(ArticleAttachment.objects.select_related("article"), pk=pk)
    visible = selectors.articles_visible(user=request.user, include_drafts=True)
    if not visible.filter(pk=item.article_id).exists():
        raise Http404("No such file.")
    inline = item.content_type.lower() in RASTER_IMAGE_TYPES and request.GET.get("download") != "1"
    try:
        handle = item.file.open("rb")
    except (FileNotFoundError, OSError) as error:
        raise Http404("The file is missing from storage.") from error
    response = FileResponse(
        handle,
        as_attachment=not inline,
        filename=item.name,
        content_type=_served_type(item.content_type, inline=inline),
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = FILE_CSP
    response["Cache-Control"] = "private, max-age=3600"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    return response
