"""Checks on files that arrive from customers, agents, mail and the API."""

import hashlib
import io
import mimetypes
import unicodedata

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

# Raster formats a browser may show inline once Pillow has confirmed them.
RASTER_IMAGE_TYPES = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
}


def clean_filename(name: str, *, default: str = "attachment") -> str:
    """A display name safe to store: no path, no control or invisible characters."""
    name = unicodedata.normalize("NFKC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] not in ("C", "Z") or ch == " ")
    name = name.strip(" .")
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 200 - len(ext) - 1] + dot + ext) if dot and len(ext) < 16 else name[:200]
    return name or default


def guess_content_type(name: str, declared: str = "") -> str:
    declared = (declared or "").split(";")[0].strip().lower()
    if declared and "/" in declared:
        return declared
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def check_image(name: str, content_type: str, content: bytes) -> None:
    """Refuse a file that claims to be a raster image but is not one of that format."""
    expected = RASTER_IMAGE_TYPES.get(content_type)
    if expected is None:
        return
    try:
        with Image.open(io.BytesIO(content)) as image:
            image.verify()
            actual = image.format
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        actual = None
    if actual != expected:
        raise ValidationError({"attachments": _("%(name)s is not a valid image.") % {"name": name}})
