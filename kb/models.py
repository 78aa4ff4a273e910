"""Knowledge base: categories, articles and their files, helpfulness votes, deflections, and
the canned responses agents insert into replies.

Visibility: customers (and anonymous visitors) see published, public articles whose category
and every parent category are public; agents also see internal ones. `kb.selectors` is the
one place that applies this.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from helpdesk.lib.models import TimeStampedModel


class Category(TimeStampedModel):
    name = models.CharField(_("name"), max_length=128)
    slug = models.SlugField(_("address"), max_length=140, unique=True)
    parent = models.ForeignKey(
        "self",
        models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("parent category"),
    )
    description = models.TextField(_("description"), blank=True)
    is_public = models.BooleanField(
        _("public"),
        default=True,
        help_text=_("Customers see public categories; internal ones are for agents only."),
    )
    sort_order = models.PositiveIntegerField(_("order"), default=0)

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["sort_order", "name"]
        constraints = [
            models.UniqueConstraint(fields=["parent", "name"], name="kb_category_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("kb_portal:category", kwargs={"slug": self.slug})

    def clean(self) -> None:
        super().clean()
        node, seen = self.parent, {self.pk}
        while node is not None:
            if node.pk in seen:
                raise ValidationError(
                    {"parent": _("A category cannot be inside one of its own subcategories.")}
                )
            seen.add(node.pk)
            node = node.parent


class ArticleStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PUBLISHED = "published", _("Published")


class Article(TimeStampedModel):
    category = models.ForeignKey(
        Category, models.PROTECT, related_name="articles", verbose_name=_("category")
    )
    title = models.CharField(_("title"), max_length=200)
    # Set once from the title when the article is created, so links keep working when the
    # title changes.
    slug = models.SlugField(_("address"), max_length=220, unique=True, editable=False)
    body = models.TextField(_("body"), help_text=_("Markdown: **bold**, _italic_, lists, links."))
    body_html = models.TextField(editable=False)  # body through helpdesk.lib.sanitize
    body_text = models.TextField(editable=False)  # plain text of body_html: search, snippets
    tags = models.CharField(
        _("tags"), max_length=255, blank=True, help_text=_("Words separated by commas.")
    )
    related_topics = models.ManyToManyField(
        "routing.HelpTopic",
        blank=True,
        related_name="kb_articles",
        verbose_name=_("related help topics"),
    )
    is_public = models.BooleanField(
        _("public"), default=True, help_text=_("Internal articles are visible to agents only.")
    )
    status = models.CharField(
        _("status"), max_length=16, choices=ArticleStatus, default=ArticleStatus.DRAFT
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="kb_articles",
        verbose_name=_("author"),
    )
    published_at = models.DateTimeField(_("published"), null=True, blank=True, editable=False)
    views = models.PositiveIntegerField(_("views"), default=0, editable=False)
    helpful_yes = models.PositiveIntegerField(_("helpful"), default=0, editable=False)
    helpful_no = models.PositiveIntegerField(_("not helpful"), default=0, editable=False)

    class Meta:
        verbose_name = _("article")
        verbose_name_plural = _("articles")
        ordering = ["title", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ArticleStatus.values), name="kb_article_status_valid"
            ),
        ]
        indexes = [
            # A category's page: its published articles by title.
            models.Index(
                fields=["category", "title"],
                name="kb_article_published",
                condition=Q(status="published"),
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("kb_portal:article", kwargs={"slug": self.slug})

    @property
    def tag_list(self) -> list[str]:
        return [tag.strip() for tag in self.tags.split(",") if tag.strip()]

    @property
    def is_published(self) -> bool:
        return self.status == ArticleStatus.PUBLISHED


def article_file_path(instance: "ArticleAttachment", filename: str) -> str:
    # Keyed by content hash, like ticket attachments: the stored name never comes from the
    # uploader.
    digest = instance.content_hash
    return f"kb/{digest[:2]}/{digest[2:4]}/{digest}"


class ArticleAttachment(models.Model):
    article = models.ForeignKey(Article, models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=article_file_path, max_length=255)
    content_hash = models.CharField(_("SHA-256"), max_length=64)
    name = models.CharField(_("file name"), max_length=255)
    content_type = models.CharField(_("type"), max_length=255)
    size = models.PositiveBigIntegerField(_("size"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("article file")
        verbose_name_plural = _("article files")
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("kb_portal:attachment", kwargs={"pk": self.pk, "filename": self.name})


class ArticleVote(models.Model):
    """One "was this helpful?" answer per visitor and article. `voter` is "u<user id>" for
    signed-in visitors, "s<session key>" for others (one column, so the uniqueness holds on
    every database, MariaDB included)."""

    article = models.ForeignKey(Article, models.CASCADE, related_name="votes")
    voter = models.CharField(max_length=64)
    helpful = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["article", "voter"], name="kb_vote_once"),
        ]

    def __str__(self) -> str:
        return f"{self.article_id}: {'yes' if self.helpful else 'no'}"


class Deflection(models.Model):
    """A customer opened this article from the suggestions of the new-ticket form.

    It counts as a deflection unless the same visitor (signed-in user, or the email address
    typed into the form, kept only as a hash) files a ticket within
    `kb.services.DEFLECTION_WINDOW` of opening it: then `ticket` is set."""

    article = models.ForeignKey(Article, models.CASCADE, related_name="deflections")
    session_key = models.CharField(max_length=64)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    email_hash = models.CharField(max_length=64, blank=True)
    opened_at = models.DateTimeField()
    ticket = models.ForeignKey(
        "tickets.Ticket", models.SET_NULL, null=True, blank=True, related_name="+"
    )
    filed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["article", "session_key"], name="kb_deflection_once_per_session"
            ),
        ]
        indexes = [
            # Converting candidates when a ticket is filed: recent, not yet filed.
            models.Index(fields=["opened_at"], name="kb_deflection_open"),
        ]

    def __str__(self) -> str:
        return f"{self.article_id} at {self.opened_at:%Y-%m-%d %H:%M}"


class CannedResponse(TimeStampedModel):
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(
        _("body"),
        help_text=_(
            "Markdown. Variables: {{ customer.name }}, {{ customer.first_name }}, "
            "{{ customer.email }}, {{ ticket.number }}, {{ ticket.subject }}, "
            "{{ ticket.status }}, {{ ticket.department }}, {{ agent.name }}, "
            "{{ agent.first_name }}."
        ),
    )
    department = models.ForeignKey(
        "routing.Department",
        models.CASCADE,
        null=True,
        blank=True,
        related_name="canned_responses",
        verbose_name=_("department"),
        help_text=_("Empty: available on every department's tickets."),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("canned response")
        verbose_name_plural = _("canned responses")
        ordering = ["title", "pk"]

    def __str__(self) -> str:
        return self.title
