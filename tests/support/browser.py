"""Headless Chromium for tests and doc screenshots: Debian's browser driven by Playwright.

Playwright's own browser download cannot be fetched here, so it launches Debian's
``chromium`` (``scripts/install-system.sh``) by path. The ``browser`` fixture (one browser
per pytest session, registered by the top-level ``conftest.py``) gives a ``Browser`` whose
``open`` loads a file at a given viewport width; ``layout`` measures what a reader at that
width sees (horizontal overflow, images that did not load) and ``screenshot`` saves the
whole page as PNG.

    def test_page_fits_a_phone(browser):
        page = browser.open(path, width=400)
        assert browser.layout(page).fits(), browser.layout(page)
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# Quiet, offline, no first-run UI; --no-sandbox because the tests run as root.
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run", "--disable-sync"]

# Every visible element whose box reaches past the viewport's right edge, and every image
# that did not load (a missing image is small and would hide the overflow it would cause).
_LAYOUT_JS = """
() => {
  const width = document.documentElement.clientWidth;
  const overflow = [];
  for (const el of document.body.querySelectorAll('*')) {
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (box.width === 0 || style.display === 'none' || style.visibility === 'hidden') continue;
    if (box.right > width + 0.5 || box.left < -0.5) {
      const text = (el.innerText || el.getAttribute('alt') || '').trim().slice(0, 40);
      overflow.push(`${el.tagName.toLowerCase()} ${Math.round(box.left)}..` +
                    `${Math.round(box.right)} ${JSON.stringify(text)}`);
    }
  }
  const broken = [...document.images]
    .filter(img => !(img.complete && img.naturalWidth > 0))
    .map(img => img.getAttribute('src'));
  const images = [...document.images].map(img => {
    const box = img.getBoundingClientRect();
    return [img.getAttribute('alt') || '', Math.round(box.width), img.naturalWidth,
            Math.round(box.top + window.scrollY)];
  });
  return {viewport: window.innerWidth, client: width,
          scroll: document.documentElement.scrollWidth,
          body_scroll: document.body.scrollWidth, overflow, broken, images};
}
"""


def chromium_path() -> str | None:
    """Debian's chromium (``$CHROMIUM`` wins), or None when it is not installed."""
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or \
        shutil.which("chromium-browser")
    return found if found and Path(found).exists() else None


@dataclass(frozen=True)
class Layout:
    """A page as laid out at one viewport width (CSS pixels)."""

    viewport: int
    client: int  # the viewport less a vertical scrollbar, if any
    scroll: int  # document.documentElement.scrollWidth
    body_scroll: int
    overflow: list[str] = field(default_factory=list)  # elements past the right edge
    broken: list[str] = field(default_factory=list)  # images that did not load
    # alt, width shown (CSS px), natural width (image px), top (CSS px from the page top)
    images: list[tuple[str, int, int, int]] = field(default_factory=list)

    def fits(self) -> bool:
        """No horizontal scrolling, nothing cut off, every image shown."""
        return (self.scroll <= self.viewport and self.body_scroll <= self.viewport
                and not self.overflow and not self.broken)


class Browser:
    """One headless Chromium; each ``open`` is a fresh page (own context) at a width."""

    def __init__(self, browser: Any) -> None:
        self._browser = browser
        self._contexts: list[Any] = []

    @property
    def version(self) -> str:
        return str(self._browser.version)

    def open(self, path: Path | str, *, width: int, height: int = 900,
             scale: float = 1.0, timezone: str | None = None,
             wait_until: str = "load") -> Any:
        """A page showing ``path`` (a file or URL) at ``width`` CSS px, fonts and images loaded.
        Each page has its own context (cookies: one signed-in person per page); ``timezone``
        is the browser's zone (web apps that show local times use it), ``wait_until``
        "networkidle" for an app that loads its data after the page."""
        context = self._browser.new_context(viewport={"width": width, "height": height},
                                            device_scale_factor=scale, timezone_id=timezone)
        self._contexts.append(context)
        page = context.new_page()
        url = path if isinstance(path, str) else path.resolve().as_uri()
        page.goto(url, wait_until=wait_until)
        from playwright.sync_api import Error as PlaywrightError

        try:
            page.evaluate("document.fonts.ready.then(() => true)")
        except PlaywrightError:  # the app went elsewhere meanwhile (a sign-in page): wait there
            page.wait_for_load_state(wait_until)
        return page

    def layout(self, page: Any) -> Layout:
        found = page.evaluate(_LAYOUT_JS)
        return Layout(viewport=found["viewport"], client=found["client"],
                      scroll=found["scroll"], body_scroll=found["body_scroll"],
                      overflow=found["overflow"], broken=found["broken"],
                      images=[tuple(i) for i in found["images"]])

    def screenshot(self, page: Any, png: Path) -> Path:
        png.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(png), full_page=True)
        return png

    def close_pages(self) -> None:
        for context in self._contexts:
            context.close()
        self._contexts.clear()


@contextmanager
def chromium() -> Iterator[Browser]:
    """Start headless Chromium (Debian's) under Playwright; stop it on exit."""
    path = chromium_path()
    if path is None:
        raise RuntimeError("chromium is not installed: apt-get install -y chromium "
                           "(scripts/install-system.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=LAUNCH_ARGS)
        try:
            yield Browser(browser)
        finally:
            browser.close()


@pytest.fixture(scope="session")
def browser_session() -> Iterator[Browser]:
    """One Chromium for the whole session (it starts in about a second)."""
    if chromium_path() is None:
        pytest.fail("chromium is not installed: run scripts/install-system.sh "
                    "(Debian packages chromium, chromium-driver)")
    with chromium() as started:
        yield started


@pytest.fixture
def browser(browser_session: Browser) -> Iterator[Browser]:
    """The session's Chromium; pages a test opened are closed after it."""
    yield browser_session
    browser_session.close_pages()
