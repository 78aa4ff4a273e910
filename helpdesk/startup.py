"""What every long-running process checks before it serves: the web and the Celery worker."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

MISSING_SECRET_KEY = (
    "SECRET_KEY is not set. Set it in the environment or in .env "  # noqa: S105 - a message
    "(or set DEBUG=true for a development run)."
)


def secret_key_is_set() -> bool:
    try:
        return bool(settings.SECRET_KEY)
    except ImproperlyConfigured:  # Django refuses to hand out an empty key
        return False


def require_secret_key() -> None:
    """Refuse to start a process that would sign sessions, CSRF tokens and links with no key."""
    if not secret_key_is_set():
        raise ImproperlyConfigured(MISSING_SECRET_KEY)


def worker_warm() -> None:
    """Load what a worker's first task would otherwise load: the URL configuration (the
    links in the first email it renders), about 0.4 s. Run once before the worker forks."""
    from django.urls import get_resolver

    get_resolver().reverse_dict  # noqa: B018 - reading it loads and indexes every URL
