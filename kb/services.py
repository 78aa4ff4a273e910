"""Every change to the knowledge base: categories, articles and their files, views, votes,
deflections and canned responses."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import unescape
from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.text import slugify
from django.utils.translation import gettext as _

from accounts import permissions
from helpdesk.adminlog import admin_delete, admin_log_record, object_snapshot
from helpdesk.lib.files import check_image, clean_filename, guess_content_type, sha256
from helpdesk.lib.memo import in_run, snapshot_value
from helpdesk.lib.sanitize import render_markdown
from helpdesk.models import AdminAction

from .canned import canned_template_check
from .models import (
    Article,
    ArticleAttachment,
    ArticleStatus,
    ArticleVote,
    CannedResponse,
    Category,
    Deflection,
)

if TYPE_CHECKING:
    from accounts.models import User
    from tickets.models import Ticket

# A ticket filed by the same visitor this soon after opening a suggested article means the
# article did not answer the question.
DEFLECTION_WINDOW = timedelta(minutes=30)
ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024
# Addresses of the portal's own pages under /kb/, never given to an article.
RESERVED_SLUGS = frozenset({"search", "suggest", "files", "c"})


@dataclass(frozen=True)
class UploadedFile:
    name: str
    content: bytes
    content_type: str = ""


def _require_writer(user: User) -> None:
    if not permissions.can(user, "kb.manage"):
        raise PermissionDenied(_("Your role does not allow writing knowledge base articles."))


def _unique_slug(model: type, text: str, *, max_length: int) -> str:
    base = (slugify(text) or "item")[: max_length - 8].strip("-") or "item"
    slug, n = base, 2
    while slug in RESERVED_SLUGS or model.objects.filter(slug=slug).exists():
        slug = f"{base}-{n}"
        n += 1
    return slug


# --- categories -------------------------------------------------------------------------------


@transaction.atomic
def category_save(*, category: Category, by: User) -> Category:
    """Create or update a category (its fields already set by the form)."""
    _require_writer(by)
    if not category.slug:
        category.slug = _unique_slug(Category, category.name, max_length=140)
    category.full_clean()
    category.save()
    return category


@transaction.atomic
def category_delete(*, category: Category, by: User) -> None:
    _require_writer(by)
    if category.articles.exists() or category.children.exists():
        raise ValidationError(_("Only an empty category can be deleted."))
    category.delete()


# --- articles ---------------------------------------------------------------------------------


def article_body_render(article: Article) -> None:
    """Fill body_html (through the one sanitiser) and body_text from the markdown body.

    Images may point at the article's own files (`![alt](/kb/files/<id>/<name>)`, the address
    the edit page shows); the sanitiser holds back every image address, and only those of this
    article's files are given back to the `src`."""
    html = str(render_markdown(article.body))
    if article.pk:
        for attachment in article.attachments.all():
            url = attachment.get_absolute_url()
            html = html.replace(f'data-remote-src="{url}"', f'src="{url}"')
    article.body_html = html
    article.body_text = " ".join(unescape(strip_tags(html)).split())


def article_preview(*, body: str, article: Article | None = None) -> str:
    """The HTML `body` would get on `article` (or a new article), without saving anything."""
    draft = Article(pk=article.pk if article is not None else None, body=body)
    article_body_render(draft)
    return draft.body_html


def _attachments_add(article: Article, files: list[UploadedFile]) -> None:
    for upload in files:
        name = clean_filename(upload.name)
        if len(upload.content) > ATTACHMENT_MAX_BYTES:
            raise ValidationError(
                {"attachments": _("%(name)s is larger than 10 MB.") % {"name": name}}
            )
        content_type = guess_content_type(name, upload.content_type)
        check_image(name, content_type, upload.content)
        attachment = ArticleAttachment(
            article=article,
            content_hash=sha256(upload.content),
            name=name,
            content_type=content_type,
            size=len(upload.content),
        )
        attachment.file.save(name, ContentFile(upload.content), save=False)
        attachment.save()


@transaction.atomic
def article_save(
    *,
    article: Article,
    by: User,
    related_topics: list | None = None,
    files: list[UploadedFile] = (),  # type: ignore[assignment]
    remove_files: list[ArticleAttachment] = (),  # type: ignore[assignment]
) -> Article:
    """Create or update an article: render its body, keep its slug, stamp publication."""
    _require_writer(by)
    creating = article.pk is None
    if creating:
        article.slug = _unique_slug(Article, article.title, max_length=220)
        article.author = by
    if article.status == ArticleStatus.PUBLISHED and article.published_at is None:
        article.published_at = timezone.now()
    article_body_render(article)
    article.full_clean(exclude=["slug", "body_html", "body_text"])
    article.save()
    if related_topics is not None:
        article.related_topics.set(related_topics)
    for attachment in remove_files:
        if attachment.article_id == article.pk:
            attachment.delete()
    if files:
        _attachments_add(article, list(files))
    if files or remove_files:
        article_body_render(article)
        article.save(update_fields=["body_html", "body_text"])
    return article


@transaction.atomic
def article_delete(*, article: Article, by: User) -> None:
    _require_writer(by)
    article.delete()


def article_view_record(*, article: Article, session: dict) -> bool:
    """Count one view per session and article; True when this one counted."""
    seen = session.get("kb_viewed", [])
    if article.pk in seen:
        return False
    Article.objects.filter(pk=article.pk).update(views=F("views") + 1)
    session["kb_viewed"] = [*seen[-199:], article.pk]
    return True


def _voter(*, user: User | None, session_key: str | None) -> str:
    if user is not None and user.is_authenticated:
        return f"u{user.pk}"
    if not session_key:
        raise ValidationError(_("Your browser must accept cookies to answer."))
    return f"s{session_key}"


def article_vote(
    *, article: Article, helpful: bool, user: User | None, session_key: str | None
) -> bool:
    """Record "was this helpful?" once per visitor (signed-in user, else browser session).
    True when this answer counted, False when the visitor had already answered."""
    voter = _voter(user=user, session_key=session_key)
    try:
        with transaction.atomic():
            ArticleVote.objects.create(article=article, voter=voter, helpful=helpful)
    except IntegrityError:
        return False
    counter = "helpful_yes" if helpful else "helpful_no"
    Article.objects.filter(pk=article.pk).update(**{counter: F(counter) + 1})
    return True


def article_voted(*, article: Article, user: User | None, session_key: str | None) -> bool:
    try:
        voter = _voter(user=user, session_key=session_key)
    except ValidationError:
        return False
    return ArticleVote.objects.filter(article=article, voter=voter).exists()


# --- deflections ------------------------------------------------------------------------------


def email_hash(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest() if email.strip() else ""


def deflection_candidate_record(
    *, article: Article, session_key: str, user: User | None, email: str = ""
) -> Deflection | None:
    """A customer opened `article` from the new-ticket suggestions: a deflection until they
    file a ticket within DEFLECTION_WINDOW. Once per session and article."""
    signed_in = user is not None and user.is_authenticated
    try:
        with transaction.atomic():
            return Deflection.objects.create(
                article=article,
                session_key=session_key,
                user=user if signed_in else None,
                email_hash=email_hash(user.email if signed_in else email),
                opened_at=timezone.now(),
            )
    except IntegrityError:
        return None


def deflections_filed(*, ticket: Ticket) -> int:
    """The customer of `ticket` filed it: the suggested articles they opened shortly before
    did not deflect it. Matched by user, or by the hash of the address typed into the form."""
    since = ticket.created_at - DEFLECTION_WINDOW
    customer = ticket.user
    hashed = email_hash(customer.email)
    if in_run():
        # A run of fetched mail asks once who has open deflections, rather than trying an
        # update for every ticket: the articles were opened before the mail was sent, so
        # before the run listed it.
        known_since, users, hashes = snapshot_value("kb:deflections:open", _deflections_open)
        if since >= known_since and customer.pk not in users and hashed not in hashes:
            return 0
    whose = Q(user_id=customer.pk) | Q(email_hash=hashed) if hashed else Q(user_id=customer.pk)
    return Deflection.objects.filter(
        whose,
        ticket__isnull=True,
        opened_at__gte=since,
        opened_at__lte=ticket.created_at,
    ).update(ticket=ticket, filed_at=ticket.created_at)


def _deflections_open() -> tuple[datetime, set[int], set[str]]:
    """Since when, and whose, the deflections no ticket ended yet are; from a little before
    the window, so that tickets opened a moment before this was asked are covered too."""
    since = timezone.now() - DEFLECTION_WINDOW - timedelta(minutes=5)
    users, hashes = set(), set()
    for user_id, hashed in (
        Deflection.objects.filter(ticket__isnull=True, opened_at__gte=since)
        .values_list("user_id", "email_hash")
        .distinct()
    ):
        if user_id is not None:
            users.add(user_id)
        if hashed:
            hashes.add(hashed)
    return since, users, hashes


def deflections_filed_in_session(*, ticket: Ticket, session_key: str | None) -> int:
    """The portal filed `ticket` from the browser session `session_key`: the suggested
    articles opened in that session did not deflect it either (covers visitors who opened an
    article before typing their address)."""
    if not session_key:
        return 0
    return Deflection.objects.filter(
        session_key=session_key,
        ticket__isnull=True,
        opened_at__gte=ticket.created_at - DEFLECTION_WINDOW,
    ).update(ticket=ticket, filed_at=ticket.created_at)


# --- canned responses -------------------------------------------------------------------------


def _require_canned_admin(user: User) -> None:
    if not permissions.can(user, "admin.settings"):
        raise PermissionDenied(_("Your role does not allow this."))


@transaction.atomic
def canned_response_save(
    *, response: CannedResponse, by: User, changes: dict[str, list] | None = None
) -> CannedResponse:
    """Create or update a canned response (its template checked first) and record it in the
    admin log; `changes` is what the admin form changed (`helpdesk.adminlog.form_changes`)."""
    _require_canned_admin(by)
    canned_template_check(response.body)
    creating = response._state.adding
    response.full_clean()
    response.save()
    if creating or changes:
        admin_log_record(
            actor=by,
            obj=response,
            action=AdminAction.CREATE if creating else AdminAction.UPDATE,
            changes=changes if changes is not None else object_snapshot(response, after=True),
        )
    return response


@transaction.atomic
def canned_response_delete(*, response: CannedResponse, by: User) -> None:
    _require_canned_admin(by)
    admin_delete(obj=response, actor=by)
