"""Settings for the test suite: only what tests need differs from base."""

import os

os.environ.setdefault("DEBUG", "false")
os.environ.setdefault(
    "SECRET_KEY", "test-only-secret-key-that-is-long-enough-for-django-checks-123"
)
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("CELERY_BROKER_URL", "memory://")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")
os.environ.setdefault("EMAIL_URL", "memorymail://")

from .base import *  # noqa: F403
from .base import DATABASES, VAR_DIR

ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file rather than shared-cache memory, so tests with several threads get real locking
    # (shared-cache memory databases fail at once with "table is locked" instead of waiting).
    # One file per test process, so two test runs at once do not share (and break) it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-helpdesk-{os.getpid()}.sqlite3")}
