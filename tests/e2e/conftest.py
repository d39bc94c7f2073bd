"""Fixtures the browser tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.e2e.browser import chromium


@pytest.fixture
def anyio_backend() -> str:
    """asyncio's own loop, as before the in-process tests moved to uvloop (tests/conftest.py):
    the e2e tests' clients and in-test MQTT links keep the loop they were written on."""
    return "asyncio"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, one per test module."""
    with chromium() as browser:
        yield browser
