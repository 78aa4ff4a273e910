"""The only tags and filters a canned response may use: `if` and a few text filters.

No `load`, `include`, `url`, `debug` or `ssi`: a canned response cannot reach templates,
settings or anything beyond the variables `kb.canned.canned_context` puts in its context.
"""

from django.template import Library, defaultfilters, defaulttags

register = Library()
register.tag("if", defaulttags.do_if)
for _name in ("default", "upper", "lower", "title", "capfirst"):
    register.filter(_name, getattr(defaultfilters, _name))
