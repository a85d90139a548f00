"""Browser fixtures: Debian's Chromium driven by Playwright, failing on console errors and failed requests."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUT = Path(__file__).resolve().parents[1] / "output"


@dataclass
class Problems:
    """Console errors, uncaught exceptions and failed requests seen by a page."""

    items: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def add(self, text: str) -> None:
        if not any(p.search(text) for p in self.allowed):
            self.items.append(text)

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))
        self.items = [t for t in self.items if not re.search(pattern, t)]


def watch(page: Page, problems: Problems) -> None:
    """Record everything that went wrong on ``page``."""
    page.on("console", lambda m: problems.add(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.add(f"page error: {e}"))

    def failed(request: Any) -> None:
        reason = request.failure or ""
        # hls.js aborts fragment loads when it switches rungs; navigation cancels pending loads.
        if "ERR_ABORTED" in reason:
            return
        problems.add(f"request failed: {request.method} {request.url} {reason}")

    page.on("requestfailed", failed)
    page.on(
        "response",
        lambda r: problems.add(f"HTTP {r.status}: {r.request.method} {r.url}") if r.status >= 400 else None,
    )


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Path:
    """``tests/output/<test>/`` for screenshots (git-ignored)."""
    path = OUTPUT / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    path.mkdir(parents=True, exist_ok=True)
    return path


async def new_context(browser: Browser, base_url: str, problems: Problems) -> BrowserContext:
    """A fresh browser profile whose pages report their problems."""
    context = await browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(60_000)
    context.on("page", lambda page: watch(page, problems))
    return context
