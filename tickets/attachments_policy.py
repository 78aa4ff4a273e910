"""Which files customers may attach in the portal, and the check every upload goes through.

The allow-list and the size limit are read through `allowed_attachment_types()` and
`max_attachment_size()` only, so moving them from settings to an admin-edited row changes
these two functions and nothing else.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from helpdesk.config import config
from helpdesk.lib import files

from .services import AttachmentUpload

# At most this many files on one message: a form is not a file-transfer service.
MAX_FILES = 10


@dataclass(frozen=True)
class AttachmentTypes:
    """The allow-list: extensions (".pdf") and content types ("text/plain", "image/*")."""

    extensions: frozenset[str]
    content_types: frozenset[str]

    def allows(self, name: str, content_type: str) -> bool:
        extension = _extension(name)
        if extension and extension in self.extensions:
            return True
        major = content_type.split("/")[0]
        return content_type in self.content_types or f"{major}/*" in self.content_types

    def describe(self) -> str:
        return ", ".join(sorted(self.extensions) + sorted(self.content_types))


def _extension(name: str) -> str:
    stem, dot, extension = name.rpartition(".")
    return f".{extension.lower()}" if dot and stem else ""


def allowed_attachment_types() -> AttachmentTypes:
    """The allow-list in force: the settings screen's, else `HELPDESK_ATTACHMENT_TYPES`."""
    extensions, content_types = set(), set()
    for item in config().allowed_attachment_types:
        item = item.strip().lower()
        if not item:
            continue
        if "/" in item:
            content_types.add(item)
        else:
            extensions.add(item if item.startswith(".") else f".{item}")
    return AttachmentTypes(frozenset(extensions), frozenset(content_types))


def max_attachment_size() -> int:
    """The largest file accepted, in bytes (the settings screen's, else
    `HELPDESK_MAX_ATTACHMENT_SIZE`)."""
    return config().max_attachment_size


def content_type_for(name: str) -> str:
    """The type we store and serve a file as: from its name, never from what the browser
    claimed, so a page cannot be slipped in as "image/png"."""
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def attachment_check(upload: UploadedFile) -> AttachmentUpload:
    """One uploaded file as an `AttachmentUpload`, or `ValidationError` saying why it is
    refused: too large, a type not on the allow-list, or an image that is not one."""
    name = files.clean_filename(upload.name or "")
    limit = max_attachment_size()
    if upload.size is not None and upload.size > limit:
        raise ValidationError(
            _("%(name)s is too large (%(size)s); the limit is %(limit)s.")
            % {"name": name, "size": filesizeformat(upload.size), "limit": filesizeformat(limit)}
        )
    content_type = content_type_for(name)
    allowed = allowed_attachment_types()
    if not allowed.allows(name, content_type):
        raise ValidationError(
            _("%(name)s: this type of file is not accepted. Accepted: %(types)s.")
            % {"name": name, "types": allowed.describe()}
        )
    content = upload.read(limit + 1)
    if len(content) > limit:
        raise ValidationError(
            _("%(name)s is too large; the limit is %(limit)s.")
            % {"name": name, "limit": filesizeformat(limit)}
        )
    declared = files.guess_content_type(name, upload.content_type or "")
    try:
        # The type from the name decides; a declared raster type is held to its word too.
        files.check_image(name, content_type, content)
        if declared != content_type:
            files.check_image(name, declared, content)
    except ValidationError as error:
        raise ValidationError(_("%(name)s is not a valid image file.") % {"name": name}) from error
    return AttachmentUpload(name=name, content=content, content_type=content_type)


def attachments_check(uploads: Iterable[UploadedFile]) -> list[AttachmentUpload]:
    """Every file checked; one `ValidationError` listing each refused file."""
    uploads = list(uploads)
    if len(uploads) > MAX_FILES:
        raise ValidationError(_("Attach at most %d files.") % MAX_FILES)
    accepted, errors = [], []
    for upload in uploads:
        try:
            accepted.append(attachment_check(upload))
        except ValidationError as error:
            errors.extend(error.messages)
    if errors:
        raise ValidationError(errors)
    return accepted
