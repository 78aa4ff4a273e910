"""The email templates the help desk ships: what a code without an `EmailTemplate` row sends,
and what the data migration puts in the table for admins to edit.

Django template source on the plain context of `mailgate.notifications.context_build`:

* `helpdesk`: title, url, reply_separator
* `ticket`: number, subject, status, priority, department, help_topic, source, created_at,
  due_at, url (the portal page for customers, the staff page for agents)
* `customer`, `recipient`, `actor`, `assignee`, `team`: name, email (agents' `email` empty
  in customer mail)
* `entry`: the message, response or note the email is about: body, poster, created_at
* `event`: what changed: from, to, comment, agent, team

HTML bodies are autoescaped and `entry.body` is already sanitised HTML there; plain text
bodies are not escaped (they are never shown as HTML).
"""

from __future__ import annotations

_HTML_FOOTER = """<p style="color:#777;font-size:small">{{ helpdesk.title }}
{% if ticket.url %}&middot; <a href="{{ ticket.url }}">{{ ticket.url }}</a>{% endif %}</p>"""

_TEXT_FOOTER = """--
{{ helpdesk.title }}
{{ ticket.url }}"""

_SEPARATOR_TEXT = "{{ helpdesk.reply_separator }}\n\n"
_SEPARATOR_HTML = '<p style="color:#999">{{ helpdesk.reply_separator }}</p>\n'

DEFAULT_TEMPLATES: dict[str, dict[str, str]] = {
    # --- to the customer ----------------------------------------------------------------
    "ticket.autoresp": {
        "subject": "Support ticket opened [#{{ ticket.number }}]",
        "body_text": _SEPARATOR_TEXT
        + """Dear {{ recipient.name }},

Thank you for contacting us. Your ticket #{{ ticket.number }} has been created:
"{{ ticket.subject }}". A member of our team will get back to you as soon as possible.

To add to your request, reply to this email and keep [#{{ ticket.number }}] in the subject.
{% if ticket.url %}You can also follow the ticket online: {{ ticket.url }}{% endif %}

"""
        + _TEXT_FOOTER,
        "body_html": _SEPARATOR_HTML
        + """<p>Dear {{ recipient.name }},</p>
<p>Thank you for contacting us. Your ticket <strong>#{{ ticket.number }}</strong> has been
created: &ldquo;{{ ticket.subject }}&rdquo;. A member of our team will get back to you as
soon as possible.</p>
<p>To add to your request, reply to this email and keep [#{{ ticket.number }}] in the
subject.{% if ticket.url %} You can also
<a href="{{ ticket.url }}">follow the ticket online</a>.{% endif %}</p>
"""
        + _HTML_FOOTER,
    },
    "message.autoresp": {
        "subject": "Message received [#{{ ticket.number }}]",
        "body_text": _SEPARATOR_TEXT
        + """Dear {{ recipient.name }},

Your message to ticket #{{ ticket.number }} ("{{ ticket.subject }}") has been received and
added to the ticket. We will get back to you as soon as possible.

"""
        + _TEXT_FOOTER,
        "body_html": _SEPARATOR_HTML
        + """<p>Dear {{ recipient.name }},</p>
<p>Your message to ticket <strong>#{{ ticket.number }}</strong>
(&ldquo;{{ ticket.subject }}&rdquo;) has been received and added to the ticket. We will get
back to you as soon as possible.</p>
"""
        + _HTML_FOOTER,
    },
    "ticket.reply": {
        "subject": "Re: {{ ticket.subject }} [#{{ ticket.number }}]",
        "body_text": _SEPARATOR_TEXT
        + """{{ entry.body }}

{{ entry.poster }}
"""
        + _TEXT_FOOTER,
        "body_html": _SEPARATOR_HTML
        + """<div>{{ entry.body }}</div>
<p>{{ entry.poster }}</p>
"""
        + _HTML_FOOTER,
    },
    "ticket.status_notice": {
        "subject": "{{ ticket.subject }} [#{{ ticket.number }}] is {{ ticket.status|lower }}",
        "body_text": _SEPARATOR_TEXT
        + """Dear {{ recipient.name }},

Your ticket #{{ ticket.number }} ("{{ ticket.subject }}") is now {{ ticket.status|lower }}.
{% if event.comment %}
{{ event.comment }}
{% endif %}
If you need anything more, reply to this email and keep [#{{ ticket.number }}] in the
subject.

"""
        + _TEXT_FOOTER,
        "body_html": _SEPARATOR_HTML
        + """<p>Dear {{ recipient.name }},</p>
<p>Your ticket <strong>#{{ ticket.number }}</strong> (&ldquo;{{ ticket.subject }}&rdquo;) is
now <strong>{{ ticket.status|lower }}</strong>.</p>
{% if event.comment %}<p>{{ event.comment|linebreaksbr }}</p>{% endif %}
<p>If you need anything more, reply to this email and keep [#{{ ticket.number }}] in the
subject.</p>
"""
        + _HTML_FOOTER,
    },
    # --- to agents ----------------------------------------------------------------------
    "ticket.alert": {
        "subject": "New ticket alert: {{ ticket.subject }} [#{{ ticket.number }}]",
        "body_text": _SEPARATOR_TEXT
        + """Hello {{ recipient.name }},

New ticket #{{ ticket.number }} in {{ ticket.department }}.

From:     {{ customer.name }} <{{ customer.email }}>
Subject:  {{ ticket.subject }}
Priority: {{ ticket.priority }}{% if ticket.help_topic %}
Topic:    {{ ticket.help_topic }}{% endif %}

{{ entry.body }}

"""
        + _TEXT_FOOTER,
        "body_html": _SEPARATOR_HTML
        + """<p>Hello {{ recipient.name }},</p>
<p>New ticket <strong>#{{ ticket.number }}</strong> in {{ ticket.department }}.</p>
<table>
<tr><th align="left">From</th><td>{{ customer.name }} &lt;{{ customer.email }}&gt;</td></tr>
<tr><th align="left">Subject</th><td>{{ ticket.subject }}</td></tr>
<tr><th align="left">Priority</th><td>{{ ticket.priority }}</td></tr>
{% if ticket.help_topic %}<tr><th align="left">Topic</th><td>{{ ticket.help_topic }}</td></tr>
{% endif %}</table>
<hr>
<div>{{ entry.body }}</div>
"""
        + _HTML_FOOTER,
    },
    "message.alert": {
        "subject": "New message alert: {{ ticket.subject }} [#{{ ticket.number }}]",
        "body_text": _SEPARATOR_TEXT
        + """Hello {{ recipient.name }},

{{ entry.poster }} wrote to ticket #{{ ticket.number }} ("{{ ticket.subject }}"):

{{ entry.body }}

"""
        + _TEXT_FOOTER,
        "body_html": _SEPARATOR_HTML
        + """<p>Hello {{ recipient.name }},</p>
<p>{{ entry.poster }} wrote to ticket <strong>#{{ ticket.number }}</strong>
(&ldquo;{{ ticket.subject }}&rdquo;):</p>
<hr>
<div>{{ entry.body }}</div>
"""
        + _HTML_FOOTER,
    },
    "note.alert": {
        "subject": "Internal note: {{ ticket.subject }} [#{{ ticket.number }}]",
        "body_text": _SEPARATOR_TEXT
        + """Hello {{ recipient.name }},

{{ entry.poster }} added an internal note to ticket #{{ ticket.number }}
("{{ ticket.subject }}"):

{{ entry.body }}

"""
        + _TEXT_FOOTER,
        "body_html": _SEPARATOR_HTML
        + """<p>Hello {{ recipient.name }},</p>
<p>{{ entry.poster }} added an internal note to ticket <strong>#{{ ticket.number }}</strong>
(&ldquo;{{ ticket.subject }}&rdquo;):</p>
<hr>
<div>{{ entry.body }}</div>
"""
        + _HTML_FOOTER,
    },
    "assigned.alert": {
        "subject": "Ticket assigned to {% if event.agent %}you{% else %}{{ event.team }}{% endif %}"
        ": {{ ticket.subject }} [#{{ ticket.number }}]",
        "body_text": _SEPARATOR_TEXT
        + """Hello {{ recipient.name }},

{{ actor.name|default:"The help desk" }} assigned ticket #{{ ticket.number }} to
{% if event.agent %}you{% else %}your team {{ event.team }}{% endif %}.

Subject:  {{ ticket.subject }}
From:     {{ customer.name }} <{{ customer.email }}>
Priority: {{ ticket.priority }}
{% if event.comment %}
{{ event.comment }}
{% endif %}
"""
        + _TEXT_FOOTER,
        "body_html": _SEPARATOR_HTML
        + """<p>Hello {{ recipient.name }},</p>
<p>{{ actor.name|default:"The help desk" }} assigned ticket
<strong>#{{ ticket.number }}</strong> to
{% if event.agent %}you{% else %}your team {{ event.team }}{% endif %}.</p>
<table>
<tr><th align="left">Subject</th><td>{{ ticket.subject }}</td></tr>
<tr><th align="left">From</th><td>{{ customer.name }} &lt;{{ customer.email }}&gt;</td></tr>
<tr><th align="left">Priority</th><td>{{ ticket.priority }}</td></tr>
</table>
{% if event.comment %}<p>{{ event.comment|linebreaksbr }}</p>{% endif %}
"""
        + _HTML_FOOTER,
    },
    "transfer.alert": {
        "subject": "Ticket #{{ ticket.number }} transferred to {{ ticket.department }}",
        "body_text": _SEPARATOR_TEXT
        + """Hello {{ recipient.name }},

{{ actor.name|default:"The help desk" }} transferred ticket #{{ ticket.number }}
("{{ ticket.subject }}") from {{ event.from }} to {{ event.to }}.
{% if event.comment %}
{{ event.comment }}
{% endif %}
"""
        + _TEXT_FOOTER,
        "body_html": _SEPARATOR_HTML
        + """<p>Hello {{ recipient.name }},</p>
<p>{{ actor.name|default:"The help desk" }} transferred ticket
<strong>#{{ ticket.number }}</strong> (&ldquo;{{ ticket.subject }}&rdquo;) from
{{ event.from }} to {{ event.to }}.</p>
{% if event.comment %}<p>{{ event.comment|linebreaksbr }}</p>{% endif %}
"""
        + _HTML_FOOTER,
    },
    "ticket.overdue": {
        "subject": "Overdue ticket alert: {{ ticket.subject }} [#{{ ticket.number }}]",
        "body_text": _SEPARATOR_TEXT
        + """Hello {{ recipient.name }},

Ticket #{{ ticket.number }} ("{{ ticket.subject }}") in {{ ticket.department }} is overdue.
{% if ticket.due_at %}It was due {{ ticket.due_at }}.
{% endif %}{% if assignee.name %}It is assigned to {{ assignee.name }}.
{% elif team.name %}It is assigned to {{ team.name }}.
{% else %}It is not assigned.
{% endif %}

"""
        + _TEXT_FOOTER,
        "body_html": _SEPARATOR_HTML
        + """<p>Hello {{ recipient.name }},</p>
<p>Ticket <strong>#{{ ticket.number }}</strong> (&ldquo;{{ ticket.subject }}&rdquo;) in
{{ ticket.department }} is overdue{% if ticket.due_at %} (it was due
{{ ticket.due_at }}){% endif %}.</p>
<p>{% if assignee.name %}It is assigned to {{ assignee.name }}.{% elif team.name %}It is
assigned to {{ team.name }}.{% else %}It is not assigned.{% endif %}</p>
"""
        + _HTML_FOOTER,
    },
}
