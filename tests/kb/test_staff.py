"""The staff UI's knowledge base: reading, writing with preview, files and inline images,
permissions, statistics, list pages' queries and pages."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from kb.models import Article, ArticleAttachment, ArticleStatus, Category, Deflection
from tests.kb.factories import ArticleFactory, KbCategoryFactory

pytestmark = pytest.mark.django_db

LIST_URL = "/scp/kb/"


def png_bytes():
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def article_post(category, **overrides):
    data = {
        "title": "Printer jams",
        "category": category.pk,
        "body": "Open **tray two**.",
        "tags": "printer, jam, printer",
        "is_public": "on",
        "status": ArticleStatus.DRAFT,
    }
    data.update(overrides)
    return data


def test_the_staff_nav_links_the_knowledge_base(client, reader):
    client.force_login(reader)
    html = client.get(reverse("staff:home")).content.decode()
    assert f'href="{LIST_URL}"' in html


def test_every_agent_reads_drafts_and_internal_articles(client, reader, corpus):
    client.force_login(reader)
    html = client.get(LIST_URL).content.decode()
    for article in corpus.values():
        if isinstance(article, Article):
            assert article.title in html
    assert "New article" not in html
    detail = client.get(reverse("kb_staff:article_detail", args=[corpus["draft"].pk]))
    assert detail.status_code == 200 and "Unfinished printer text." in detail.content.decode()


def test_the_list_filters_and_searches(client, reader, corpus):
    client.force_login(reader)
    html = client.get(LIST_URL, {"status": "draft"}).content.decode()
    assert "Printer drafts" in html and "Printer jams" not in html
    html = client.get(LIST_URL, {"category": corpus["internal_category"].pk}).content.decode()
    assert "Printer runbook" in html and "Printer jams" not in html
    html = client.get(LIST_URL, {"q": "tray"}).content.decode()
    assert "Printer jams" in html and "Printer runbook" not in html


def test_a_writer_creates_a_draft_then_publishes_it(client, writer):
    category = KbCategoryFactory()
    client.force_login(writer)
    response = client.post(reverse("kb_staff:article_create"), article_post(category))
    article = Article.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("kb_staff:article_detail", args=[article.pk])
    assert article.slug == "printer-jams" and article.author == writer
    assert article.tags == "printer, jam"
    assert "<strong>tray two</strong>" in article.body_html and article.published_at is None
    assert client.get(article.get_absolute_url()).status_code == 404  # a draft

    response = client.post(
        reverse("kb_staff:article_edit", args=[article.pk]),
        article_post(category, title="Paper jams", status=ArticleStatus.PUBLISHED),
    )
    assert response.status_code == 302
    article.refresh_from_db()
    assert article.title == "Paper jams" and article.slug == "printer-jams"  # links keep working
    assert article.published_at is not None
    client.logout()
    assert client.get("/kb/printer-jams/").status_code == 200


def test_invalid_input_comes_back_with_errors(client, writer):
    client.force_login(writer)
    response = client.post(reverse("kb_staff:article_create"), {"title": ""})
    assert response.status_code == 400
    assert not Article.objects.exists()


def test_preview_renders_markdown_through_the_sanitiser(client, writer):
    client.force_login(writer)
    body = "**bold** <script>alert(1)</script> [x](javascript:alert(1))"
    response = client.post(
        reverse("kb_staff:preview"), {"body": body}, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert response.status_code == 200 and "<strong>bold</strong>" in html
    assert "<script>" not in html and "javascript:" not in html


def test_preview_without_javascript_keeps_the_form(client, writer):
    category = KbCategoryFactory()
    client.force_login(writer)
    response = client.post(reverse("kb_staff:article_create"), article_post(category, preview="1"))
    html = response.content.decode()
    assert response.status_code == 200 and "<strong>tray two</strong>" in html
    assert "Printer jams" in html and not Article.objects.exists()


def test_files_and_inline_images(client, writer):
    category = KbCategoryFactory()
    client.force_login(writer)
    client.post(
        reverse("kb_staff:article_create"),
        {
            **article_post(category, status=ArticleStatus.PUBLISHED),
            "attachments": [SimpleUploadedFile("shot.png", png_bytes(), "image/png")],
        },
    )
    article = Article.objects.get()
    image = ArticleAttachment.objects.get()
    url = image.get_absolute_url()
    edit = reverse("kb_staff:article_edit", args=[article.pk])
    assert f"![shot.png]({url})" in client.get(edit).content.decode()
    client.post(
        edit,
        article_post(
            category,
            body=f"See ![shot]({url}) and ![x](https://evil.example/x.png)",
            status="published",
        ),
    )
    article.refresh_from_db()
    assert f'src="{url}"' in article.body_html
    assert ' src="https://evil.example' not in article.body_html  # only the article's own files
    client.logout()
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    client.force_login(writer)
    client.post(edit, {**article_post(category, status="published"), "remove_files": [image.pk]})
    assert not ArticleAttachment.objects.exists()


def test_agents_without_kb_manage_get_403_on_writing(client, reader, corpus):
    client.force_login(reader)
    article = corpus["published"]
    assert client.get(reverse("kb_staff:article_create")).status_code == 403
    assert client.get(reverse("kb_staff:article_edit", args=[article.pk])).status_code == 403
    assert client.post(reverse("kb_staff:article_delete", args=[article.pk])).status_code == 403
    assert client.post(reverse("kb_staff:preview"), {"body": "x"}).status_code == 403
    assert client.get(reverse("kb_staff:category_create")).status_code == 403
    assert Article.objects.filter(pk=article.pk).exists()


@pytest.mark.parametrize(
    "url",
    [
        LIST_URL,
        "/scp/kb/articles/new/",
        "/scp/kb/categories/",
        "/scp/kb/stats/",
    ],
)
def test_customers_are_sent_to_the_portal(client, customer, url):
    client.force_login(customer)
    response = client.get(url)
    assert response.status_code == 302 and response["Location"] == reverse("portal:home")


def test_anonymous_visitors_are_sent_to_the_staff_sign_in(client):
    response = client.get(LIST_URL)
    assert response.status_code == 302 and response["Location"].startswith(reverse("staff:login"))


def test_writers_manage_categories(client, writer):
    client.force_login(writer)
    response = client.post(
        reverse("kb_staff:category_create"),
        {"name": "Billing", "description": "", "is_public": "on", "sort_order": 0},
    )
    assert response.status_code == 302
    billing = Category.objects.get()
    assert billing.slug == "billing"
    child = KbCategoryFactory(parent=billing)
    # A category cannot move under its own child.
    response = client.post(
        reverse("kb_staff:category_edit", args=[billing.pk]),
        {"name": "Billing", "parent": child.pk, "is_public": "on", "sort_order": 0},
    )
    assert response.status_code == 400
    # Only empty categories are deleted.
    client.post(reverse("kb_staff:category_delete", args=[billing.pk]))
    assert Category.objects.filter(pk=billing.pk).exists()
    client.post(reverse("kb_staff:category_delete", args=[child.pk]))
    assert not Category.objects.filter(pk=child.pk).exists()


def test_a_writer_deletes_an_article(client, writer, corpus):
    client.force_login(writer)
    response = client.post(reverse("kb_staff:article_delete", args=[corpus["draft"].pk]))
    assert response.status_code == 302
    assert not Article.objects.filter(pk=corpus["draft"].pk).exists()


def test_the_article_list_runs_fixed_queries_and_is_paginated(
    client, reader, django_assert_num_queries
):
    category = KbCategoryFactory()
    for index in range(3):
        ArticleFactory(category=category, author=reader, slug=f"a-{index}")
    client.force_login(reader)
    client.get(LIST_URL)
    with django_assert_num_queries(8) as few:
        assert client.get(LIST_URL).status_code == 200
    for index in range(60):
        ArticleFactory(category=KbCategoryFactory(), author=reader, slug=f"b-{index}")
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(LIST_URL)
    html = response.content.decode()
    assert html.count("/scp/kb/articles/") == 25
    assert "page=2" in html
    assert client.get(LIST_URL, {"page": 3}).status_code == 200


def test_the_portal_category_page_runs_fixed_queries_and_is_paginated(
    client, django_assert_num_queries
):
    category = KbCategoryFactory(slug="many")
    for index in range(3):
        ArticleFactory(category=category, slug=f"a-{index}")
    client.get("/kb/c/many/")
    with django_assert_num_queries(7) as few:
        assert client.get("/kb/c/many/").status_code == 200
    for index in range(40):
        ArticleFactory(category=category, slug=f"b-{index}")
    with django_assert_num_queries(len(few.captured_queries)):
        html = client.get("/kb/c/many/").content.decode()
    assert "page=2" in html


def test_the_portal_index_runs_fixed_queries(client, django_assert_num_queries):
    for index in range(3):
        ArticleFactory(category=KbCategoryFactory(), slug=f"a-{index}")
    client.get("/kb/")
    with django_assert_num_queries(6) as few:
        assert client.get("/kb/").status_code == 200
    for index in range(20):
        ArticleFactory(category=KbCategoryFactory(parent=KbCategoryFactory()), slug=f"b-{index}")
    with django_assert_num_queries(len(few.captured_queries)):
        assert client.get("/kb/").status_code == 200


def test_admins_see_views_helpfulness_and_deflections(client, admin, corpus):
    article = corpus["published"]
    Article.objects.filter(pk=article.pk).update(views=42, helpful_yes=7, helpful_no=2)
    from django.utils import timezone

    Deflection.objects.create(article=article, session_key="s1", opened_at=timezone.now())
    client.force_login(admin)
    html = client.get(reverse("kb_staff:stats")).content.decode()
    assert "Printer jams" in html and ">42<" in html and ">7<" in html and ">2<" in html
    assert "Printer drafts" in html  # drafts and internal articles too


def test_stats_are_for_admins_only(client, writer):
    client.force_login(writer)
    assert client.get(reverse("kb_staff:stats")).status_code == 403
