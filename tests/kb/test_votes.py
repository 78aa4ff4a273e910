""" "Was this helpful?" counted once per visitor; views once per session."""

import pytest

from kb.models import ArticleVote
from tests.kb.factories import ArticleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def article():
    return ArticleFactory(slug="howto")


def vote_url(article):
    return f"/kb/{article.slug}/vote/"


def test_an_anonymous_visitor_counts_once(client, article):
    assert client.post(vote_url(article), {"helpful": "yes"}).status_code == 302
    client.post(vote_url(article), {"helpful": "yes"})
    client.post(vote_url(article), {"helpful": "no"})
    article.refresh_from_db()
    assert (article.helpful_yes, article.helpful_no) == (1, 0)
    assert ArticleVote.objects.count() == 1


def test_each_visitor_counts(client, article, customer):
    client.post(vote_url(article), {"helpful": "yes"})
    client.force_login(customer)
    client.post(vote_url(article), {"helpful": "no"})
    client.post(vote_url(article), {"helpful": "no"})
    article.refresh_from_db()
    assert (article.helpful_yes, article.helpful_no) == (1, 1)


def test_a_signed_in_customer_counts_once_across_browsers(client, article, customer):
    from django.test import Client

    client.force_login(customer)
    client.post(vote_url(article), {"helpful": "yes"})
    other = Client()
    other.force_login(customer)
    other.post(vote_url(article), {"helpful": "yes"})
    article.refresh_from_db()
    assert article.helpful_yes == 1


def test_the_answer_must_be_yes_or_no(client, article):
    assert client.post(vote_url(article), {"helpful": "maybe"}).status_code == 400
    assert client.get(vote_url(article)).status_code == 405


def test_htmx_gets_the_thanks_fragment(client, article):
    response = client.post(vote_url(article), {"helpful": "yes"}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200 and "Thank you" in html and "<html" not in html


def test_the_article_page_asks_until_answered(client, article):
    assert "Was this article helpful?" in client.get(article.get_absolute_url()).content.decode()
    client.post(vote_url(article), {"helpful": "yes"})
    html = client.get(article.get_absolute_url()).content.decode()
    assert "Was this article helpful?" not in html and "Thank you" in html


def test_views_count_once_per_session(client, article):
    client.get(article.get_absolute_url())
    client.get(article.get_absolute_url())
    article.refresh_from_db()
    assert article.views == 1
