"""The staff UI's knowledge base (`/scp/kb/`): every agent reads articles (internal ones and
drafts too); agents whose role holds `kb.manage` write categories and articles; admins see
the statistics. The ticket page's reply box asks `insert` for articles and canned responses.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts import permissions
from accounts.decorators import admin_required, agent_required
from tickets.selectors import ticket_get_for_page

from . import selectors, services
from .canned import canned_render
from .forms import ArticleForm, CategoryForm, PreviewForm
from .models import Article, ArticleStatus, Category

PAGE_SIZE = 25
INSERT_CANNED_LIMIT = 20


def _page(request: HttpRequest, items: object) -> object:
    return Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))


def _require_writer(request: HttpRequest) -> None:
    if not permissions.can(request.user, "kb.manage"):
        raise PermissionDenied(_("Your role does not allow writing knowledge base articles."))


def _errors_to_form(form: Form, error: ValidationError) -> None:
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, errors in error.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def _context(request: HttpRequest, **extra: object) -> dict[str, object]:
    return {
        "nav_active": "kb",
        "can_manage": permissions.can(request.user, "kb.manage"),
        "can_stats": permissions.can(request.user, "admin.settings"),
        **extra,
    }


# --- articles ---------------------------------------------------------------------------------


@agent_required
@require_GET
def article_list(request: HttpRequest) -> HttpResponse:
    query = " ".join(request.GET.get("q", "").split())[:200]
    categories = list(Category.objects.order_by("name"))
    category = next((c for c in categories if str(c.pk) == request.GET.get("category", "")), None)
    status = request.GET.get("status", "")
    if status not in ArticleStatus.values:
        status = ""
    articles = selectors.article_list_for_staff(
        user=request.user, query=query, category=category, status=status
    )
    page = _page(request, articles)
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "kb/staff/article_list.html",
        _context(
            request,
            page=page,
            query=query,
            categories=categories,
            category=category,
            status=status,
            statuses=ArticleStatus.choices,
            params=params.urlencode(),
        ),
    )


@agent_required
@require_GET
def article_detail(request: HttpRequest, pk: int) -> HttpResponse:
    article = selectors.article_get_for_staff(user=request.user, pk=pk)
    return render(
        request,
        "kb/staff/article_detail.html",
        _context(request, article=article, files=article.attachments.all()),
    )


def _uploads(files: list) -> list[services.UploadedFile]:
    return [
        services.UploadedFile(name=f.name, content=f.read(), content_type=f.content_type or "")
        for f in files
    ]


def _article_form(request: HttpRequest, article: Article | None) -> HttpResponse:
    _require_writer(request)
    instance = article or Article()
    form = ArticleForm(request.POST or None, request.FILES or None, instance=instance)
    preview = None
    if request.method == "POST" and "preview" in request.POST:
        # The preview button without JavaScript: the form comes back with the preview.
        preview = services.article_preview(body=request.POST.get("body", ""), article=article)
    elif request.method == "POST" and form.is_valid():
        try:
            saved = services.article_save(
                article=form.save(commit=False),
                by=request.user,
                related_topics=list(form.cleaned_data["related_topics"]),
                files=_uploads(form.cleaned_data["attachments"]),
                remove_files=list(form.cleaned_data.get("remove_files") or []),
            )
        except ValidationError as error:
            _errors_to_form(form, error)
        else:
            messages.success(request, _("“%(title)s” was saved.") % {"title": saved.title})
            return redirect("kb_staff:article_detail", pk=saved.pk)
    status = 400 if form.errors else 200
    return render(
        request,
        "kb/staff/article_form.html",
        _context(
            request,
            form=form,
            article=article,
            files=article.attachments.all() if article else [],
            preview=preview,
        ),
        status=status,
    )


@agent_required
def article_create(request: HttpRequest) -> HttpResponse:
    return _article_form(request, None)


@agent_required
def article_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _article_form(request, selectors.article_get_for_staff(user=request.user, pk=pk))


@agent_required
@require_POST
def article_delete(request: HttpRequest, pk: int) -> HttpResponse:
    article = selectors.article_get_for_staff(user=request.user, pk=pk)
    services.article_delete(article=article, by=request.user)
    messages.success(request, _("“%(title)s” was deleted.") % {"title": article.title})
    return redirect("kb_staff:article_list")


@agent_required
@require_POST
def preview(request: HttpRequest) -> HttpResponse:
    """The body as readers will see it (markdown through the one sanitiser); htmx asks."""
    _require_writer(request)
    form = PreviewForm(request.POST)
    body = form.cleaned_data["body"] if form.is_valid() else ""
    article = None
    if request.POST.get("article", "").isdigit():
        article = Article.objects.filter(pk=int(request.POST["article"])).first()
    html = services.article_preview(body=body, article=article)
    return render(request, "kb/staff/_partials/preview.html", {"preview": html})


# --- categories -------------------------------------------------------------------------------


@agent_required
@require_GET
def category_list(request: HttpRequest) -> HttpResponse:
    tree = selectors.category_tree(user=request.user)
    return render(request, "kb/staff/category_list.html", _context(request, tree=tree))


def _category_form(request: HttpRequest, category: Category | None) -> HttpResponse:
    _require_writer(request)
    form = CategoryForm(request.POST or None, instance=category or Category())
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.category_save(category=form.save(commit=False), by=request.user)
        except ValidationError as error:
            _errors_to_form(form, error)
        else:
            messages.success(request, _("“%(name)s” was saved.") % {"name": saved.name})
            return redirect("kb_staff:category_list")
    status = 400 if form.errors else 200
    return render(
        request,
        "kb/staff/category_form.html",
        _context(request, form=form, category=category),
        status=status,
    )


@agent_required
def category_create(request: HttpRequest) -> HttpResponse:
    return _category_form(request, None)


@agent_required
def category_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _category_form(request, get_object_or_404(Category, pk=pk))


@agent_required
@require_POST
def category_delete(request: HttpRequest, pk: int) -> HttpResponse:
    category = get_object_or_404(Category, pk=pk)
    try:
        services.category_delete(category=category, by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("“%(name)s” was deleted.") % {"name": category.name})
    return redirect("kb_staff:category_list")


# --- statistics -------------------------------------------------------------------------------


@admin_required("admin.settings")
@require_GET
def stats(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "kb/staff/stats.html",
        _context(
            request,
            page=_page(request, selectors.article_stats()),
            totals=selectors.deflections_total(),
        ),
    )


# --- the reply box's "Insert" helper ----------------------------------------------------------


@agent_required
@require_GET
def insert(request: HttpRequest, number: str) -> HttpResponse:
    """Articles and canned responses to insert into a reply on this ticket: a fragment for
    the reply box (htmx), or a page of its own (opened in a new tab without JavaScript)."""
    ticket = ticket_get_for_page(user=request.user, number=number)
    query = " ".join(request.GET.get("q", "").split())[:200]
    articles = selectors.articles_for_insert(user=request.user, query=query)
    # Only links customers can open are offered as links.
    public = selectors.article_ids_public(ids=[article.pk for article in articles])
    for article in articles:
        article.is_linkable = article.pk in public
        article.portal_url = request.build_absolute_uri(article.get_absolute_url())
    canned = list(selectors.canned_responses_for_ticket(ticket=ticket, query=query))
    for response in canned[:INSERT_CANNED_LIMIT]:
        response.rendered = canned_render(response.body, ticket=ticket, agent=request.user)
    context = _context(
        request, ticket=ticket, query=query, articles=articles, canned=canned[:INSERT_CANNED_LIMIT]
    )
    if request.htmx:
        return render(request, "kb/staff/_partials/insert_results.html", context)
    return render(request, "kb/staff/insert.html", context)
