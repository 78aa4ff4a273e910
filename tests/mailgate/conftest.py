import pytest


@pytest.fixture(autouse=True)
def _forget_memos():
    """Per-process copies of mailboxes, templates and filters start empty in every test: a
    transactional test's flush deletes rows without the signals that would invalidate them."""
    from django.core.cache import cache

    from helpdesk.lib.memo import memos_forget
    from routing import services as routing_services

    cache.clear()
    memos_forget()
    routing_services._filters_memo.clear()
    yield
