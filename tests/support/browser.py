"""A real browser for the tests: Debian's Chromium (``.ci/run`` installs it), driven by
playwright (PyPI) through the Chrome DevTools Protocol, never a browser build of its own.

The machine's network is closed, and Chromium's background services (updates, sync, safe
browsing, metrics) would try to reach out: they are switched off.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM = os.environ.get("STARTTLS_SURVEY_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def chromium_missing() -> str | None:
    """Why no browser test can run here, or None."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)) and not shutil.which(
            CHROMIUM):
        return f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (playwright ``Browser``), closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def render(browser: Any, url: str, width: int, height: int = 900) -> dict[str, Any]:
    """Open ``url`` in a fresh page ``width`` CSS pixels wide and measure it: ``scroll_width``,
    ``inner_width``, ``height`` (the document's), ``images`` (each ``src`` head, loaded or
    not, natural width), ``sections`` (ids), ``wide`` (elements past the right edge, for the
    failure message), ``console_errors`` and ``page_errors`` (uncaught exceptions) and
    ``failed_requests``."""
    page = browser.new_page(viewport={"width": width, "height": height})
    console: list[str] = []
    errors: list[str] = []
    failed: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: failed.append(r.url[:200]))
    page.goto(url, wait_until="load")
    measured: dict[str, Any] = page.evaluate("""() => ({
        scroll_width: document.documentElement.scrollWidth,
        inner_width: window.innerWidth,
        height: document.documentElement.scrollHeight,
        images: Array.from(document.images).map(img => ({
            src: (img.getAttribute('src') || '').slice(0, 80),
            complete: img.complete, natural_width: img.naturalWidth})),
        sections: Array.from(document.querySelectorAll('section[id]')).map(s => s.id),
        wide: Array.from(document.querySelectorAll('body *'))
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
            .slice(0, 5).map(e => e.tagName + '.' + e.className),
    })""")
    page.close()
    return {**measured, "console_errors": console, "page_errors": errors,
            "failed_requests": failed}
