"""Customers and anonymous visitors never reach internal categories or articles, nor drafts:
not by URL, search, suggestions or file address (404, the same as for a missing page)."""

import pytest
from django.core.files.base import ContentFile

from kb import selectors
from kb.models import ArticleAttachment

pytestmark = pytest.mark.django_db

HIDDEN = ("draft", "internal_article", "in_internal_category", "in_nested_internal")


@pytest.fixture(params=["anonymous", "customer"])
def visitor(request, client, customer):
    if request.param == "customer":
        client.force_login(customer)
    return client


def attach(article, name="plan.txt"):
    attachment = ArticleAttachment(
        article=article, content_hash="ab" * 32, name=name, content_type="text/plain", size=5
    )
    attachment.file.save(name, ContentFile(b"hello"), save=False)
    attachment.save()
    return attachment


def test_visitors_read_published_public_articles(visitor, corpus):
    response = visitor.get("/kb/printer-jams/")
    assert response.status_code == 200
    assert "Open tray two." in response.content.decode()


@pytest.mark.parametrize("name", HIDDEN)
def test_visitors_get_404_for_hidden_articles_by_url(visitor, corpus, name):
    assert visitor.get(corpus[name].get_absolute_url()).status_code == 404


@pytest.mark.parametrize("name", ["internal_category", "under_internal"])
def test_visitors_get_404_for_internal_categories(visitor, corpus, name):
    assert visitor.get(corpus[name].get_absolute_url()).status_code == 404


def test_the_index_lists_only_public_categories(visitor, corpus):
    html = visitor.get("/kb/").content.decode()
    assert "Printing" in html
    assert "Runbooks" not in html and "Deep" not in html


def test_the_category_page_lists_only_visible_articles(visitor, corpus):
    html = visitor.get("/kb/c/printing/").content.decode()
    assert "Printer jams" in html
    for name in HIDDEN:
        assert corpus[name].title not in html


def test_search_finds_only_visible_articles(visitor, corpus):
    html = visitor.get("/kb/search/", {"q": "printer"}).content.decode()
    assert "Printer jams" in html
    for name in HIDDEN:
        assert corpus[name].title not in html


def test_suggestions_offer_only_visible_articles(visitor, corpus):
    html = visitor.get("/kb/suggest/", {"subject": "printer problem"}).content.decode()
    assert "Printer jams" in html
    for name in HIDDEN:
        assert corpus[name].title not in html


@pytest.mark.parametrize("name", HIDDEN)
def test_files_of_hidden_articles_are_404(visitor, corpus, name):
    attachment = attach(corpus[name])
    assert visitor.get(attachment.get_absolute_url()).status_code == 404


def test_files_of_visible_articles_download_with_a_sandbox(visitor, corpus):
    attachment = attach(corpus["published"])
    response = visitor.get(attachment.get_absolute_url())
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"hello"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"].startswith("attachment")


def test_voting_on_a_hidden_article_is_404(visitor, corpus):
    response = visitor.post(
        corpus["internal_article"].get_absolute_url() + "vote/", {"helpful": "yes"}
    )
    assert response.status_code == 404


def test_agents_read_internal_articles_in_the_portal_but_not_drafts(client, agent, corpus):
    client.force_login(agent)
    assert client.get("/kb/printer-admin/").status_code == 200
    assert client.get("/kb/printer-deep/").status_code == 200
    assert client.get("/kb/c/runbooks/").status_code == 200
    assert client.get("/kb/printer-drafts/").status_code == 404


def test_selectors_hide_the_same_for_customers_and_show_all_published_to_agents(
    corpus, customer, agent
):
    for user in (None, customer):
        assert set(selectors.articles_visible(user=user)) == {corpus["published"]}
    seen = set(selectors.articles_visible(user=agent))
    assert corpus["draft"] not in seen and len(seen) == 4
    assert corpus["draft"] in selectors.articles_visible(user=agent, include_drafts=True)
    # include_drafts does nothing for customers.
    assert set(selectors.articles_visible(user=customer, include_drafts=True)) == {
        corpus["published"]
    }


def test_a_public_category_inside_an_internal_one_stays_hidden(client, corpus):
    from tests.kb.factories import ArticleFactory, KbCategoryFactory

    nested = KbCategoryFactory(
        name="Nested public", slug="nested", parent=corpus["internal_category"]
    )
    article = ArticleFactory(category=nested, slug="nested-article")
    assert client.get("/kb/c/nested/").status_code == 404
    assert client.get(article.get_absolute_url()).status_code == 404
