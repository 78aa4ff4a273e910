"""Serving attachments: the one place that turns a stored file into a download.

Used by the staff UI (`tickets_staff:attachment`) and the portal. Access is checked again here,
whatever the caller did: the ticket must be visible to the user (`can_view_ticket`), and
customers never get the files of internal notes; both answer 404, so ids cannot be probed.

A file is shown in the browser only when it is a raster image (by the content type stored
when it arrived; the services checked it with Pillow). Everything else, SVG and HTML above
all, is a download. Every file response carries `X-Content-Type-Options: nosniff` and a
Content-Security-Policy that allows nothing and sandboxes the document, so even a file a
browser decides to render cannot run script or reach our origin.
"""

from __future__ import annotations

import io
import logging
from urllib.parse import quote

from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from PIL import Image, ImageOps

from accounts import permissions
from accounts.decorators import agent_required
from helpdesk.lib.files import RASTER_IMAGE_TYPES

from ..models import Attachment, EntryKind

logger = logging.getLogger(__name__)

FILE_CSP = "default-src 'none'; sandbox"
# Thumbnails on the ticket page: at most this size, made once per file with Pillow and kept
# in storage beside the files (keyed by content hash, like them).
THUMBNAIL_SIZE = (320, 240)
# What `reverse` leaves unquoted in a path argument (RFC 3986 sub-delimiters and /~:@).
URL_SAFE = "!$&'()*+,;=/~:@"
# Types a browser could run as a document or script: never sent as such, whatever the
# disposition, in case a client ignores it.
_ACTIVE_TYPE_MARKERS = ("html", "xml", "svg", "javascript", "ecmascript", "x-sh")


def attachment_is_image(attachment: Attachment) -> bool:
    """May the browser show this attachment inline (a thumbnail, an inline image)?"""
    return attachment.content_type.lower() in RASTER_IMAGE_TYPES


def attachment_url(attachment: Attachment) -> str:
    """The staff download address of an attachment. Built from one reversed address (a
    thread with many files would otherwise reverse three URLs per file), quoted as
    `reverse` quotes."""
    base = reverse("tickets_staff:attachment", args=[0, "_"]).rsplit("0/_", 1)[0]
    return f"{base}{attachment.pk}/{quote(attachment.name, safe=URL_SAFE)}"


def _served_type(attachment: Attachment, *, inline: bool) -> str:
    content_type = (attachment.content_type or "").split(";")[0].strip().lower()
    if inline:
        return content_type
    if (
        not content_type
        or "/" not in content_type
        or any(marker in content_type for marker in _ACTIVE_TYPE_MARKERS)
    ):
        return "application/octet-stream"
    return content_type


def attachment_thumbnail(attachment: Attachment) -> File | None:
    """A small PNG of a raster image attachment, made on first use and then kept in storage;
    None when the image cannot be read (the caller then serves the file itself)."""
    digest = attachment.content_hash
    width, height = THUMBNAIL_SIZE
    path = f"thumbnails/{digest[:2]}/{digest[2:4]}/{digest}-{width}x{height}.png"
    if not default_storage.exists(path):
        try:
            with attachment.file.open("rb") as handle, Image.open(handle) as image:
                image.thumbnail(THUMBNAIL_SIZE)
                thumbnail = ImageOps.exif_transpose(image)
                if thumbnail.mode not in ("RGB", "RGBA", "L", "LA"):
                    thumbnail = thumbnail.convert("RGBA")
                buffer = io.BytesIO()
                thumbnail.save(buffer, "PNG", optimize=True)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            logger.warning("No thumbnail for attachment %s", attachment.pk, exc_info=True)
            return None
        path = default_storage.save(path, ContentFile(buffer.getvalue()))
    return default_storage.open(path, "rb")


def attachment_response(
    request: HttpRequest,
    attachment: Attachment,
    *,
    inline_images: bool = True,
    thumbnail: bool = False,
) -> HttpResponse:
    """The file of `attachment` for `request.user`, or 404 when they may not have it.

    `attachment` should come with `entry__thread__ticket` selected. Raster images are sent
    inline when `inline_images` is true, everything else as a download; `thumbnail` sends a
    small PNG of a raster image instead of the image."""
    entry = attachment.entry
    ticket = entry.thread.ticket
    user = request.user
    if not permissions.can_view_ticket(user, ticket):
        raise Http404("No such attachment.")
    if entry.kind == EntryKind.NOTE and not permissions.is_agent(user):
        raise Http404("No such attachment.")
    inline = inline_images and attachment_is_image(attachment)
    small = attachment_thumbnail(attachment) if thumbnail and inline else None
    if small is not None:
        response = FileResponse(small, filename=attachment.name, content_type="image/png")
    else:
        try:
            handle = attachment.file.open("rb")
        except (FileNotFoundError, OSError) as error:
            raise Http404("The file is missing from storage.") from error
        response = FileResponse(
            handle,
            as_attachment=not inline,
            filename=attachment.name,
            content_type=_served_type(attachment, inline=inline),
        )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = FILE_CSP
    # Files are private: shared caches keep nothing; the browser may keep it for this user.
    response["Cache-Control"] = "private, max-age=3600"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    return response


@agent_required
def staff_attachment(request: HttpRequest, pk: int, filename: str) -> HttpResponse:
    """`/scp/tickets/attachments/<pk>/<name>`: the name is only there for the browser's
    "save as"; the id decides. `?download=1` downloads an image, `?thumb=1` gets its
    thumbnail."""
    attachment = get_object_or_404(
        Attachment.objects.select_related(
            "entry__thread__ticket", "entry__thread__ticket__department"
        ),
        pk=pk,
    )
    inline = request.GET.get("download") != "1"
    thumbnail = request.GET.get("thumb") == "1"
    return attachment_response(request, attachment, inline_images=inline, thumbnail=thumbnail)
