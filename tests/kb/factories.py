import factory

from kb.models import Article, ArticleStatus, CannedResponse, Category
from kb.services import article_body_render


class KbCategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.Sequence(lambda n: f"category-{n}")


class ArticleFactory(factory.django.DjangoModelFactory):
    """A published, public article (body rendered as the service does)."""

    class Meta:
        model = Article

    category = factory.SubFactory(KbCategoryFactory)
    title = factory.Sequence(lambda n: f"Article {n}")
    slug = factory.Sequence(lambda n: f"article-{n}")
    body = "How to do it: **step by step**."
    status = ArticleStatus.PUBLISHED

    @classmethod
    def _create(cls, model_class: type[Article], *args: object, **kwargs: object) -> Article:
        article = model_class(*args, **kwargs)
        article_body_render(article)
        article.save()
        return article


class CannedResponseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CannedResponse

    title = factory.Sequence(lambda n: f"Canned {n}")
    body = "Hello {{ customer.first_name }}, about #{{ ticket.number }}."
