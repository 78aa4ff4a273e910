from django import template
from django.utils.safestring import SafeString

from helpdesk.lib.sanitize import render_body as _render_body
from helpdesk.lib.sanitize import render_markdown as _render_markdown

register = template.Library()


@register.filter
def render_body(entry: object) -> SafeString:
    """`{{ entry|render_body }}`: a thread entry's body through the one sanitiser."""
    return _render_body(entry.body, entry.body_format)  # type: ignore[attr-defined]


@register.filter
def markdown(text: str) -> SafeString:
    """`{{ text|markdown }}`: markdown (signatures, articles) through the one sanitiser."""
    return _render_markdown(text)
