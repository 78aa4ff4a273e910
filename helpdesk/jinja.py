"""The Jinja2 environment of the templates under jinja_templates/: the parts of the busiest
pages that repeat per row (a queue's table, the due badge, forms' fields), where Django's
template engine cost more than the rest of the request. Pages and layouts stay Django
templates and include these with `{% jinja "name.jinja" %}` (helpdesk/templatetags/helpdesk.py).

Autoescaping is on (Django's Jinja2 backend default); the globals and filters are Django's own
functions, so dates, durations, URLs and translations come out as in the Django templates.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from django.forms.renderers import DjangoTemplates as DjangoTemplatesRenderer
from django.forms.renderers import Jinja2 as Jinja2Renderer
from django.middleware.csrf import get_token
from django.template import TemplateDoesNotExist, defaultfilters
from django.template.defaulttags import querystring as _querystring
from django.templatetags.static import static
from django.urls import reverse
from django.utils.timezone import template_localtime
from django.utils.translation import gettext, ngettext, pgettext
from jinja2 import Environment
from markupsafe import Markup

from sla.templatetags.sla_tags import sla_due


def url(name: str, *args: Any, **kwargs: Any) -> str:
    return reverse(name, args=args or None, kwargs=kwargs or None)


def date(value: Any, arg: str | None = None) -> str:
    """Django's `date` filter, in the current time zone as Django templates show it."""
    return defaultfilters.date(template_localtime(value), arg)


def isoformat(value: Any) -> str:
    """`date("c")` without Django's format machinery (a `datetime` attribute per row)."""
    return template_localtime(value).isoformat() if value else ""


def querystring(request: Any, **changes: Any) -> str:
    """Django's `{% querystring %}`: the current GET parameters with `changes` (None
    removes one)."""
    return _querystring(SimpleNamespace(request=request), **changes)


def request_csrf_token(request: Any) -> str:
    """The request's CSRF token, the same for every form on the page: Django's `get_token`
    masks the secret anew on every call, which costs more than the rest of a small form."""
    token = getattr(request, "_helpdesk_csrf_token", None)
    if token is None:
        token = request._helpdesk_csrf_token = get_token(request)
    return token


def csrf_field(request: Any) -> Markup:
    """The CSRF hidden input of a form."""
    return Markup('<input type="hidden" name="csrfmiddlewaretoken" value="{}">').format(
        request_csrf_token(request)
    )


def environment(**options: Any) -> Environment:
    options.setdefault("extensions", []).append("jinja2.ext.i18n")
    env = Environment(**options)  # noqa: S701 - the backend turns autoescape on
    env.install_gettext_callables(gettext, ngettext, newstyle=True, pgettext=pgettext)
    env.globals.update(
        url=url,
        static=static,
        querystring=querystring,
        sla_due=sla_due,
        csrf_field=csrf_field,
    )
    env.filters.update(
        date=date,
        isoformat=isoformat,
        linebreaksbr=defaultfilters.linebreaksbr,
        timesince=defaultfilters.timesince_filter,
        timeuntil=defaultfilters.timeuntil_filter,
    )
    return env


class FormRenderer(Jinja2Renderer):
    """Form widgets with Django's own Jinja2 widget templates (the same HTML, rendered several
    times faster); widgets that ship only Django templates (the admin site's) fall back to
    those."""

    def get_template(self, template_name: str) -> Any:
        try:
            return super().get_template(template_name)
        except TemplateDoesNotExist:
            return _DJANGO_RENDERER.get_template(template_name)


_DJANGO_RENDERER = DjangoTemplatesRenderer()
