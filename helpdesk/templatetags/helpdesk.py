from django import template
from django.utils.safestring import SafeString, mark_safe

from helpdesk.lib.sanitize import render_body as _render_body
from helpdesk.lib.sanitize import render_markdown as _render_markdown

register = template.Library()


@register.filter
def render_body(entry: object) -> SafeString:
    """`{{ entry|render_body }}`: a thread entry's body through the one sanitiser.

    Entries carry their body already rendered by the sanitiser when they were written
    (`ThreadEntry.body_html`); only older rows are rendered here.
    """
    rendered = getattr(entry, "body_html", "")
    if rendered:
        return mark_safe(rendered)  # noqa: S308 - written by the sanitiser, never by a user
    return _render_body(entry.body, entry.body_format)  # type: ignore[attr-defined]


@register.filter
def markdown(text: str) -> SafeString:
    """`{{ text|markdown }}`: markdown (signatures, articles) through the one sanitiser."""
    return _render_markdown(text)


@register.simple_tag(takes_context=True)
def jinja(context: template.Context, template_name: str) -> SafeString:
    """`{% jinja "tickets/staff/queue_table.jinja" %}`: a Jinja2 template under jinja_templates/
    (helpdesk/jinja.py), rendered with the current context."""
    from django.template import engines

    request = context.get("request")
    rendered = engines["jinja2"].get_template(template_name).render(context.flatten(), request)
    return mark_safe(rendered)  # noqa: S308 - Jinja2's output, escaped by its autoescape
