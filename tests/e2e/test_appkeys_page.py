"""The Application Keys prompt on the System menu page, in a real browser: an app asks
(and keeps polling, as apps do), the logged-in admin sees its name and address and decides."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.browser import log_in_to_menu
from tests.e2e.server import Server, running_server

pytestmark = pytest.mark.e2e

POLL = 0.5  # seconds between an app's polls (well inside the 5 s a request lives unpolled)


class App(threading.Thread):
    """An app asking for a key and polling until it has an answer."""

    def __init__(self, server: Server, name: str) -> None:
        super().__init__(daemon=True)
        self.server, self.name = server, name
        self.answer: httpx.Response | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.server.url, timeout=10) as http:
            r = http.post("/plugin/appkeys/request", json={"app": self.name})
            assert r.status_code == 201
            poll = r.headers["location"]
            while not self.stop.wait(POLL):
                r = http.get(poll)
                if r.status_code != 202:
                    self.answer = r
                    return


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("appkeys")
    with running_server(tmp, "sysmenu:\n  reload_interval: 0\n") as server:
        yield server


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(server.url + "/")
    yield log_in_to_menu(page)
    context.close()


def decide(page: Page, server: Server, name: str, button: str) -> httpx.Response:
    app = App(server, name)
    app.start()
    try:
        dialog = page.locator("#appkey")
        expect(dialog).to_be_visible()
        expect(page.locator("#appkey-text")).to_contain_text(f"“{name}” at 127.0.0.1")
        dialog.get_by_role("button", name=button).click()
        expect(dialog).to_be_hidden()
        app.join(15)
    finally:
        app.stop.set()
    assert app.answer is not None, "the app got no answer"
    return app.answer


def test_admin_allows_an_app_on_the_page(page: Page, server: Server) -> None:
    answer = decide(page, server, "Home Assistant", "Allow")
    assert answer.status_code == 200
    key = answer.json()["api_key"]
    with httpx.Client(base_url=server.url, headers={"X-Api-Key": key}) as http:
        assert http.get("/api/system/commands").status_code == 200
        keys = http.get("/api/plugin/appkeys").json()["keys"]
    assert {"app_id": "Home Assistant", "user_id": "admin"}.items() <= keys[-1].items()
    expect(page.locator("#notice")).to_contain_text("got its key")


def test_admin_denies_an_app_on_the_page(page: Page, server: Server) -> None:
    answer = decide(page, server, "Nosy <b>app</b>", "Deny")
    assert answer.status_code == 404
    expect(page.locator("#notice")).to_contain_text("was denied")
