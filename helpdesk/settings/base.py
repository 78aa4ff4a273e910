"""Settings of the help desk, read from the environment (see `.env.example`).

Production differs from development only by its environment. The defaults are safe: without
`DEBUG=true` the process refuses to start until `SECRET_KEY` and `ALLOWED_HOSTS` are given.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# Values already in the environment win over the file; ENV_FILE points at another file.
environ.Env.read_env(env.str("ENV_FILE", default=str(BASE_DIR / ".env")), overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

# Without DEBUG there is no default: the web (WSGI/ASGI) and Celery processes refuse to start
# without a key (helpdesk.startup), `check --deploy` fails, and Django refuses anything that
# signs. Commands that sign nothing (makemigrations, migrate) still run.
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY and DEBUG:
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-0123456789abcdef"  # noqa: S105

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# The public address of the help desk, used in links inside emails (never the Host header).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
HELPDESK_TITLE = env.str("HELPDESK_TITLE", default="Help Desk")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "anymail",
    "csp",
    "django_htmx",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "routing",
    "tickets",
    "sla",
    "mailgate",
    "kb",
    "api",
    "helpdesk",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "helpdesk.urls"
WSGI_APPLICATION = "helpdesk.wsgi.application"
ASGI_APPLICATION = "helpdesk.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "helpdesk.context_processors.site",
                "helpdesk.context_processors.staff_nav",
            ],
        },
    },
    {
        # The per-row parts of the busiest pages (helpdesk/jinja.py); the pages include them
        # with {% jinja %} and get the context above.
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "jinja_templates"],
        "APP_DIRS": False,
        "OPTIONS": {"environment": "helpdesk.jinja.environment"},
    },
]

# Form widgets render with Django's own Jinja2 widget templates: the same HTML, several times
# faster than its template engine on pages with a dozen forms (the staff ticket page).
FORM_RENDERER = "helpdesk.jinja.FormRenderer"

# --- Database -------------------------------------------------------------------------------
# PostgreSQL in production; MariaDB/MySQL and SQLite are supported and tested.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'helpdesk.sqlite3'}")
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
_engine = DATABASES["default"]["ENGINE"]
if _engine == "django.db.backends.sqlite3":
    # IMMEDIATE transactions take the write lock up front, so the web process and the worker
    # wait for each other instead of failing with "database is locked"; WAL lets reads go on.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # The queue index with included columns exists on PostgreSQL only (see tickets.models).
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
elif _engine == "django.db.backends.postgresql":
    # PostgreSQL's JIT compiler pays off for long analytical queries; the help desk's
    # queries are short, and compiling took longer than running them (20 ms on a queue
    # count). PG_JIT=true turns it back on.
    if not env.bool("PG_JIT", default=False):
        _options = DATABASES["default"].setdefault("OPTIONS", {})
        _options["options"] = f"{_options.get('options', '')} -c jit=off".strip()
elif _engine in ("django.db.backends.mysql",):
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"charset": "utf8mb4", "isolation_level": "read committed"}
    )
    DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
    # MariaDB has no partial unique indexes (nor indexes with included columns: see
    # tickets.models). The few conditional constraints ("one default
    # status", "unique top-level department name") are still enforced by model validation
    # (full_clean, so every form) and by the services that write those rows.
    SILENCED_SYSTEM_CHECKS = ["models.W036", "models.W040"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Accounts -------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "portal:home"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="en")
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Files ----------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=VAR_DIR / "static")
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")
# No MEDIA_URL is served: attachments are only ever downloaded through a view that checks access.
MEDIA_URL = "/media-not-served/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
FILE_UPLOAD_PERMISSIONS = 0o640
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o750
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=5 * 1024 * 1024)

# --- Email ----------------------------------------------------------------------------------
# EMAIL_URL takes smtp://user:pass@host:587 (smtp+tls://, smtp+ssl://), consolemail://,
# filemail:///path, memorymail:// or dummymail://. A provider through django-anymail is
# chosen with EMAIL_BACKEND (e.g. anymail.backends.postmark.EmailBackend) plus ANYMAIL_* keys.
EMAIL_CONFIG = env.email_url(
    "EMAIL_URL", default="consolemail://" if DEBUG else "smtp://localhost:25"
)
vars().update(EMAIL_CONFIG)
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default=EMAIL_CONFIG["EMAIL_BACKEND"])
ANYMAIL = env.json("ANYMAIL", default={})
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="support@localhost")
SERVER_EMAIL = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)

# --- Celery ---------------------------------------------------------------------------------
# The default broker is the filesystem transport: the one-command local run needs no server.
# Production uses Redis: CELERY_BROKER_URL=redis://127.0.0.1:6379/0.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(VAR_DIR / "celery" / "queue"),
        "data_folder_out": str(VAR_DIR / "celery" / "queue"),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem://")
    else {}
)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=None) or None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    # SLA: open tickets past their due date are marked overdue (alerts, escalation). Every
    # 5 minutes keeps an alert at most 5 minutes late; a run is one set-based UPDATE, cheap
    # when nothing is due. A run still queued when the next is due is dropped.
    "sla-overdue-check": {
        "task": "sla.tasks.overdue_check_task",
        "schedule": 5 * 60,
        "options": {"expires": 5 * 60},
    },
    # Resolved tickets close after AUTO_CLOSE_DAYS days: a limit counted in days needs no
    # more than an hourly look.
    "sla-auto-close": {
        "task": "sla.tasks.auto_close_task",
        "schedule": 60 * 60,
        "options": {"expires": 60 * 60},
    },
    # Edit locks last TICKET_LOCK_MINUTES; expired ones are ignored anyway, so clearing them
    # every 5 minutes only keeps the table small.
    "ticket-locks-clear": {
        "task": "sla.tasks.ticket_locks_clear_task",
        "schedule": 5 * 60,
        "options": {"expires": 5 * 60},
    },
    # Expired sessions, files no attachment references, mail logs past LOG_RETENTION_DAYS:
    # nothing urgent, so once a day.
    "purge": {
        "task": "sla.tasks.purge_task",
        "schedule": 24 * 60 * 60,
    },
    # Mail in: every MAIL_FETCH_INTERVAL seconds (5 minutes, osTicket's default fetch
    # frequency: quick enough for email support, light on the mail server). A run that
    # outlasts the interval is harmless (one fetch per mailbox at a time), and a run still
    # queued when the next one is due is dropped instead of piling up behind a busy worker.
    "mailboxes-fetch": {
        "task": "mailgate.tasks.mailboxes_fetch_task",
        "schedule": env.int("MAIL_FETCH_INTERVAL", default=300),
        "options": {"expires": env.int("MAIL_FETCH_INTERVAL", default=300)},
    },
    # Mail out: mail that never reached the broker, or whose worker died mid-send, is queued
    # again; every 5 minutes keeps a lost notification late by minutes, not hours.
    # Webhooks: a delivery whose queued retry was lost is queued again; every 5 minutes,
    # the first backoff step's order of magnitude.
    "webhook-deliveries-sweep": {
        "task": "api.tasks.webhook_deliveries_sweep_task",
        "schedule": 5 * 60,
    },
    # Idempotency-Key answers are kept a day; an hourly purge keeps the table small.
    "idempotent-requests-purge": {
        "task": "api.tasks.idempotent_requests_purge_task",
        "schedule": 60 * 60,
    },
    "mail-out-sweep": {
        "task": "mailgate.notifications.outbound_sweep_task",
        "schedule": 5 * 60,
    },
}

# --- Cache ----------------------------------------------------------------------------------
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}
# Sessions are read from the cache when it is shared by every process (Redis): a sign-out
# then ends the session everywhere at once. A per-process cache would let other processes
# keep a signed-out session, so sessions stay in the database alone there.
HELPDESK_SHARED_CACHE = CACHES["default"]["BACKEND"].endswith(
    ("RedisCache", "PyMemcacheCache", "PyLibMCCache")
)
if HELPDESK_SHARED_CACHE:
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
# Ticket lists, the dashboard and the staff ticket page are kept in the cache until ticket
# data changes (helpdesk/lib/querycache.py): on by default when every process shares the
# cache; with a per-process cache a change made by another process (a Celery worker
# fetching mail) would show only once the kept result expires.
HELPDESK_QUERY_CACHE = env.bool("QUERY_CACHE", default=HELPDESK_SHARED_CACHE)
# Django's ModelBackend, keeping the signed-in user's row per process when the cache is shared
# (accounts/backends.py). Django's own stays listed for sessions signed in before.
AUTHENTICATION_BACKENDS = [
    "accounts.backends.ModelBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# --- Security -------------------------------------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Only behind a proxy that strips and sets this header; never trusted by default.
if env.bool("USE_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=12 * 60 * 60)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy on every response (django-csp): scripts and styles only from our
# own static files, never inline, never eval. Templates carry no inline <script>, no
# style="" and no on*="" handlers; htmx is configured by a <meta> tag not to inject styles
# or evaluate code. Mail bodies are sanitised HTML, and this policy is the second wall.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- Logging --------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# --- The help desk --------------------------------------------------------------------------
# Ticket numbers: each run of `#` is filled with digits; `\#` is a literal `#`. With no
# sequence the digits are random (at least six, like osTicket); with a sequence name they come
# from that row of tickets.Sequence, left-padded with zeros (e.g. "TX-####" gives TX-0012).
HELPDESK_TICKET_NUMBER_FORMAT = env.str("TICKET_NUMBER_FORMAT", default="######")
HELPDESK_TICKET_NUMBER_SEQUENCE = env.str("TICKET_NUMBER_SEQUENCE", default="")
# An agent's reply to an unassigned ticket assigns it to them (osTicket's auto-claim).
HELPDESK_AUTO_CLAIM_ON_REPLY = env.bool("AUTO_CLAIM_ON_REPLY", default=True)
# Customers may close their own tickets from the portal.
HELPDESK_CUSTOMERS_CAN_CLOSE = env.bool("CUSTOMERS_CAN_CLOSE", default=True)
# Largest attachment accepted through any channel, in bytes.
HELPDESK_MAX_ATTACHMENT_SIZE = env.int("MAX_ATTACHMENT_SIZE", default=10 * 1024 * 1024)
# File types customers may attach in the portal (tickets/attachments_policy.py): extensions
# (".pdf") and content types ("text/plain", "application/*"), comma-separated. Raster images
# (png, jpeg, gif, webp) are also checked to really be images. SVG and HTML are left out on
# purpose: they can carry scripts.
HELPDESK_ATTACHMENT_TYPES = env.list(
    "ATTACHMENT_TYPES",
    default=[
        ".png", ".jpg", ".jpeg", ".gif", ".webp", ".pdf", ".txt", ".log", ".csv", ".rtf",
        ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".odt", ".ods", ".odp",
        ".zip", ".eml",
    ],
)  # fmt: skip
# Customer portal: how long an emailed guest link to a ticket works, and a registration
# link (seconds); how many tickets an anonymous visitor may open, and how many link emails
# (guest links, registration, password reset) one client may ask for, per hour and client
# address. One mailbox also receives at most PORTAL_EMAIL_LIMIT link emails an hour.
HELPDESK_GUEST_LINK_MAX_AGE = env.int("GUEST_LINK_MAX_AGE", default=7 * 24 * 60 * 60)
HELPDESK_REGISTRATION_LINK_MAX_AGE = env.int("REGISTRATION_LINK_MAX_AGE", default=3 * 24 * 60 * 60)
HELPDESK_PORTAL_OPEN_LIMIT = env.int("PORTAL_OPEN_LIMIT", default=10)
HELPDESK_PORTAL_EMAIL_LIMIT = env.int("PORTAL_EMAIL_LIMIT", default=10)
# Mail in: larger messages are kept but not processed, with the reason.
HELPDESK_MAIL_MAX_SIZE = env.int("MAIL_MAX_SIZE", default=25 * 1024 * 1024)
# A message up to this size is kept in its database row; a larger one in a file of its own
# in the media storage (0: every message in a file).
HELPDESK_MAIL_RAW_IN_ROW_MAX = env.int("MAIL_RAW_IN_ROW_MAX", default=128 * 1024)
# The ticket token in subjects ("[#123456]"); its first group is the ticket number.
HELPDESK_MAIL_TICKET_TOKEN = env.str(
    "MAIL_TICKET_TOKEN", default=r"\[#([A-Za-z0-9][A-Za-z0-9-]{2,31})\]"
)
# Addresses copied on a customer's new ticket mail become its collaborators.
HELPDESK_MAIL_CC_COLLABORATORS = env.bool("MAIL_CC_COLLABORATORS", default=True)

# --- Mail fetching ---
# How often the IMAP/POP3 mailboxes are fetched, in seconds (the beat entry above uses it).
HELPDESK_MAIL_FETCH_INTERVAL = env.int("MAIL_FETCH_INTERVAL", default=300)
# Seconds to wait for a mail server (connecting and each answer) before the fetch fails.
HELPDESK_MAIL_FETCH_TIMEOUT = env.int("MAIL_FETCH_TIMEOUT", default=30)
# A PEM file of extra certificates to trust for IMAP/POP3 over TLS (a private CA or a
# self-signed server). Certificates and host names are always verified.
HELPDESK_MAIL_CA_FILE = env.str("MAIL_CA_FILE", default="")

# --- Mail out ---
# Notifications about tickets (mailgate/notifications.py); defaults follow osTicket's. Off
# altogether with MAIL_OUT=false (imports, demo data).
HELPDESK_MAIL_OUT = env.bool("MAIL_OUT", default=True)
# Auto-responses to customers: all of them, on a new ticket, on each further message.
HELPDESK_AUTORESPONSE = env.bool("AUTORESPONSE", default=True)
HELPDESK_AUTORESPONSE_NEW_TICKET = env.bool("AUTORESPONSE_NEW_TICKET", default=True)
HELPDESK_AUTORESPONSE_NEW_MESSAGE = env.bool("AUTORESPONSE_NEW_MESSAGE", default=False)
# At most this many auto-responses to one address an hour (0: no limit), so a sender that
# misbehaves (or another robot) cannot make us send mail in a loop.
HELPDESK_AUTORESPONSE_LIMIT = env.int("AUTORESPONSE_LIMIT", default=5)
# Tell the customer when an agent closes (or reopens) their ticket.
HELPDESK_NOTICE_CLOSED = env.bool("NOTICE_CLOSED", default=True)
HELPDESK_NOTICE_REOPENED = env.bool("NOTICE_REOPENED", default=False)
# Alerts to agents (never to the agent who acted, nor to agents who cannot see the ticket).
HELPDESK_ALERT_NEW_TICKET = env.bool("ALERT_NEW_TICKET", default=True)
HELPDESK_ALERT_NEW_MESSAGE = env.bool("ALERT_NEW_MESSAGE", default=True)
HELPDESK_ALERT_NOTE = env.bool("ALERT_NOTE", default=False)
HELPDESK_ALERT_ASSIGNED = env.bool("ALERT_ASSIGNED", default=True)
HELPDESK_ALERT_ASSIGNED_TEAM = env.bool("ALERT_ASSIGNED_TEAM", default=True)
HELPDESK_ALERT_TRANSFER = env.bool("ALERT_TRANSFER", default=False)
HELPDESK_ALERT_OVERDUE = env.bool("ALERT_OVERDUE", default=True)
# Who hears about a department's tickets nobody is assigned to: its manager, its agents.
HELPDESK_ALERT_DEPT_MANAGER = env.bool("ALERT_DEPT_MANAGER", default=True)
HELPDESK_ALERT_DEPT_MEMBERS = env.bool("ALERT_DEPT_MEMBERS", default=True)

# --- SLA and scheduled jobs ---
# The SLA plan (by name) of new tickets whose filter, help topic and department set none.
# Empty: no plan, so no due date unless an agent sets one. "Default SLA" ships.
HELPDESK_DEFAULT_SLA = env.str("DEFAULT_SLA", default="Default SLA")
# Tickets in a status that closes automatically ("Resolved") are closed after this many days
# without a customer reply or a reopen. 0: never.
HELPDESK_AUTO_CLOSE_DAYS = env.int("AUTO_CLOSE_DAYS", default=14)
# Processed and ignored inbound mail and sent outbound mail are deleted after this many days
# (failed ones are kept twice as long, for investigation; unprocessed and unsent ones until
# they are done). Replies to older notifications still thread by the subject's ticket token.
# 0: kept forever.
HELPDESK_LOG_RETENTION_DAYS = env.int("LOG_RETENTION_DAYS", default=365)
# Minutes an agent's edit lock on a ticket lasts (renewed while they type).
HELPDESK_TICKET_LOCK_MINUTES = env.int("TICKET_LOCK_MINUTES", default=3)

# --- API ------------------------------------------------------------------------------------
# REST API v1 (/api/v1/) and the osTicket-compatible API (/api/tickets.json, ...). Keys are
# sent as `X-API-Key` or `Authorization: Bearer`; the staff session works too (with CSRF).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api": env.str("API_RATE_LIMIT", default="600/minute")},
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.exceptions.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "api.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Help desk REST API",
    "DESCRIPTION": (
        "Everything an agent or an admin can do, for automations. Authenticate with an API "
        "key in `X-API-Key: <key>` or `Authorization: Bearer <key>`."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"WebhookEventEnum": "api.models.WebhookEvent"},
    # Redoc from our own static files, so the docs page needs no CDN (see CSP below).
    "REDOC_DIST": "SIDECAR",
}
# Largest request body the API reads, in bytes (attachments travel base64-encoded, a third
# larger than the file); larger bodies get 413.
HELPDESK_API_MAX_BODY_SIZE = env.int("API_MAX_BODY_SIZE", default=20 * 1024 * 1024)
# Proxies whose X-Forwarded-For is believed for an API key's allowed addresses (osTicket's
# TRUSTED_PROXIES): addresses or networks, comma-separated. Empty: REMOTE_ADDR only.
HELPDESK_TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
# The cache that counts API requests for rate limits: shared by every web process (Redis in
# production through CACHE_URL).
HELPDESK_API_THROTTLE_CACHE = env.str("API_THROTTLE_CACHE", default="default")
# Webhooks: deliveries to loopback, private, link-local and metadata addresses are refused
# unless this is true (a receiver on the same machine or network).
WEBHOOK_ALLOW_PRIVATE = env.bool("WEBHOOK_ALLOW_PRIVATE", default=False)
# Seconds to wait for a webhook receiver; attempts per delivery before it is given up; failed
# attempts in a row after which the endpoint is disabled and the admins are told.
WEBHOOK_TIMEOUT = env.int("WEBHOOK_TIMEOUT", default=10)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=6)
WEBHOOK_DISABLE_AFTER = env.int("WEBHOOK_DISABLE_AFTER", default=15)
