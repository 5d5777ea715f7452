"""Headless Chromium from Debian (/usr/bin/chromium), driven by Playwright's own driver: no browser
is ever downloaded. Flags as for a closed network: without the background-networking ones Chromium
keeps calling Google's hosts, which this machine (and an air-gapped CI) refuses. Every request the
page makes is recorded, and every console message, so a test can assert the page stayed on its
own origin and logged no error."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.conftest import skip_or_fail

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class PageLog:
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)


@contextmanager
def chromium_page() -> Iterator[tuple[Any, PageLog]]:
    if shutil.which(CHROMIUM) is None:
        skip_or_fail(f"browser tests need Debian's chromium at {CHROMIUM} (apt install chromium)")
    from playwright.sync_api import sync_playwright

    log = PageLog()
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page()
            page.on("request", lambda r: log.requests.append(r.url))
            page.on(
                "console",
                lambda m: log.console_errors.append(m.text) if m.type == "error" else None,
            )
            page.on("pageerror", lambda e: log.page_errors.append(str(e)))
            yield page, log
        finally:
            browser.close()
