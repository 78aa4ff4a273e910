"""Search ranking on a fixed corpus: PostgreSQL full-text search with ranking and
highlighted snippets; the plain fallback on other databases."""

import pytest
from django.db import connection

from kb import selectors
from tests.kb.factories import ArticleFactory, KbCategoryFactory

pytestmark = pytest.mark.django_db

on_postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL only")
not_on_postgres = pytest.mark.skipif(connection.vendor == "postgresql", reason="fallback only")


@pytest.fixture
def fixed_corpus():
    category = KbCategoryFactory(slug="general")
    return {
        "title": ArticleFactory(
            category=category,
            title="Resetting your password",
            slug="reset",
            body="Use the link on the sign-in page.",
        ),
        "tags": ArticleFactory(
            category=category,
            title="Account security",
            slug="security",
            tags="password, login",
            body="Keep your account safe.",
        ),
        "body": ArticleFactory(
            category=category,
            title="Signing in",
            slug="signing-in",
            body="If you forgot your password, ask for a new one. Passwords expire yearly.",
        ),
        "other": ArticleFactory(
            category=category, title="Invoices", slug="invoices", body="Invoices are monthly."
        ),
    }


def search(query):
    return list(selectors.articles_search(selectors.articles_visible(user=None), query))


def test_an_empty_query_finds_nothing(fixed_corpus):
    assert search("   ") == []


@on_postgres
def test_full_text_ranks_title_then_tags_then_body(fixed_corpus):
    results = search("password")
    assert results == [fixed_corpus["title"], fixed_corpus["tags"], fixed_corpus["body"]]


@on_postgres
def test_full_text_matches_word_forms_and_highlights_them(fixed_corpus):
    results = search("passwords")
    assert fixed_corpus["body"] in results
    body = next(a for a in results if a == fixed_corpus["body"])
    assert "<mark>" in selectors.snippet(body, "passwords")


@on_postgres
def test_full_text_understands_web_search_syntax(fixed_corpus):
    assert search("password -account") == [fixed_corpus["title"], fixed_corpus["body"]]


@not_on_postgres
def test_fallback_needs_every_word_and_puts_title_matches_first(fixed_corpus):
    results = search("password")
    assert results[0] == fixed_corpus["title"]
    assert set(results) == {fixed_corpus["title"], fixed_corpus["tags"], fixed_corpus["body"]}
    assert search("password monthly") == []


def test_snippets_are_escaped_and_mark_only_the_matches(fixed_corpus):
    article = ArticleFactory(
        category=fixed_corpus["other"].category,
        slug="xss",
        title="Script tags",
        body="Never paste <script>alert(1)</script> into the password box.",
    )
    result = next(a for a in search("password box") if a == article)
    html = str(selectors.snippet(result, "password box"))
    assert "<script>" not in html
    assert "<mark>" in html.lower()


def test_the_search_page_shows_snippets_and_pages(client, fixed_corpus):
    category = fixed_corpus["other"].category
    for index in range(25):
        ArticleFactory(category=category, slug=f"bulk-{index}", body=f"Password tip {index}.")
    first = client.get("/kb/search/", {"q": "password"}).content.decode()
    assert "<mark>" in first.lower()
    assert "page=2" in first and "q=password" in first
    second = client.get("/kb/search/", {"q": "password", "page": 2})
    assert second.status_code == 200
