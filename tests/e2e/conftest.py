"""Browser tests: Playwright driving Debian's Chromium, headless, against `live_server`.

No browser is ever downloaded: Chromium comes from the system package (`.ci/run` installs
`chromium`); without it every browser test is skipped with the reason. Each person in a test
gets a `Visitor`: a browser context of their own (separate cookies) whose pages record
Content-Security-Policy reports from the console, script errors and any JavaScript dialog,
so a test can assert that nothing was blocked and no injected script ran.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.db import connections

# Playwright's sync API runs an event loop in this thread; Django would otherwise refuse
# the database calls the tests and the live server make from it.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")


@dataclass
class Visitor:
    """One person's browser: a context with its own cookies, and what its pages reported."""

    page: object
    base_url: str
    csp_violations: list[str] = field(default_factory=list)
    script_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    visited: list[str] = field(default_factory=list)

    def goto(self, path: str) -> None:
        self.page.goto(self.base_url + path)  # type: ignore[attr-defined]
        self.page.wait_for_load_state("load")  # type: ignore[attr-defined]

    def problems(self) -> list[str]:
        return (
            [f"CSP: {text}" for text in self.csp_violations]
            + [f"script error: {text}" for text in self.script_errors]
            + [f"dialog: {text}" for text in self.dialogs]
        )


@pytest.fixture
def chromium() -> Iterator[object]:
    # Per test, not per session: with one Playwright kept running across tests, the next
    # transactional test after a plain one started on an empty database (its
    # `serialized_rollback` data was not restored: the connection it got had none).
    if not CHROMIUM.exists():
        pytest.skip(
            f"Chromium is not installed at {CHROMIUM} (apt-get install chromium); "
            "the browser tests need it"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def _pages_kept(settings):
    """The live server runs in this process, so its cache is shared by every request as
    Redis is in production: the browser goes through the kept pages and fragments
    (helpdesk.lib.querycache, helpdesk.lib.fragments) and their CSRF tokens."""
    settings.HELPDESK_QUERY_CACHE = True
    # Nothing kept from an earlier test's database (a flush sends no signals).
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def visitor(chromium, live_server):
    """A factory of `Visitor`s; every context is closed after the test."""
    contexts = []

    def make() -> Visitor:
        context = chromium.new_context(locale="en-US")  # type: ignore[attr-defined]
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        seen = Visitor(page=page, base_url=live_server.url)

        def on_console(message: object) -> None:
            text = message.text  # type: ignore[attr-defined]
            if "Content Security Policy" in text or "Content-Security-Policy" in text:
                seen.csp_violations.append(f"{page.url}: {text}")

        def on_dialog(dialog: object) -> None:
            seen.dialogs.append(f"{page.url}: {dialog.message}")  # type: ignore[attr-defined]
            dialog.dismiss()  # type: ignore[attr-defined]

        page.on("console", on_console)
        page.on("pageerror", lambda error: seen.script_errors.append(f"{page.url}: {error}"))
        page.on("dialog", on_dialog)
        page.on("framenavigated", lambda frame: seen.visited.append(frame.url))
        return seen

    yield make
    for context in contexts:
        context.close()
    # The test's own queries ran while Playwright's loop was up; close that connection here,
    # or it outlives the test run and PostgreSQL refuses to drop the test database.
    connections.close_all()
