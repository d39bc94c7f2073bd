"""Debian's Chromium driven by Python playwright (its own browser download is not used),
and what the page tests do with it: open a page, log in, find a command's button."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect, sync_playwright

from tests.e2e.server import ADMIN_PASSWORD

CHROMIUM = "/usr/bin/chromium"
# Headless, and nothing that goes online by itself (this machine's network is closed).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        raise AssertionError(f"{CHROMIUM} is missing: ./scripts/test installs Debian's chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, timeout=60_000)
        try:
            yield browser
        finally:
            browser.close()


def open_page(context: BrowserContext, url: str) -> tuple[Page, list[str]]:
    """A new page of `context` at `url`, and the list its script errors are added to."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    return page, errors


def log_in(page: Page, password: str = ADMIN_PASSWORD, user: str = "admin") -> None:
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()


def log_in_to_menu(page: Page) -> Page:
    """Log in as the admin and wait for the menu."""
    log_in(page)
    expect(page.locator("#menu")).to_be_visible()
    return page


def command(page: Page, name: str) -> Locator:
    """The menu's button for the command called `name`."""
    return page.locator("#commands").get_by_role("button", name=name, exact=True)


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
