"""OctoPrint's own JavaScript client, taken from the octoprint wheel on PyPI at test
time (never committed), lists and executes commands against sysmenu in a real browser."""

from __future__ import annotations

import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.server import Server, running_server

pytestmark = pytest.mark.e2e

OCTOPRINT = "octoprint==1.11.8"
CACHE = Path.home() / ".cache" / "sysmenu-test"
# Load order: its libraries first, then the client core, then the System component.
SCRIPTS = [
    "octoprint/static/js/lib/jquery/jquery.js",
    "octoprint/static/js/lib/lodash.min.js",
    "octoprint/static/js/app/client/base.js",
    "octoprint/static/js/app/client/system.js",
]


def octoprint_client_scripts() -> list[str]:
    """The client's scripts from the octoprint wheel (downloaded once into a cache)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    wheels = sorted(CACHE.glob("octoprint-1.11.8-*.whl"))
    if not wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", OCTOPRINT, "-d", str(CACHE)],
            check=True,
            timeout=300,
        )
        wheels = sorted(CACHE.glob("octoprint-1.11.8-*.whl"))
    with zipfile.ZipFile(wheels[0]) as wheel:
        return [wheel.read(name).decode("utf-8") for name in SCRIPTS]


CONFIG = """\
server:
  commands:
    systemShutdownCommand: touch {tmp}/shutdown-ran
system:
  actions:
    - action: touch
      name: Touch a file
      command: touch {tmp}/touched
    - action: divider
    - action: fail
      name: Fail
      command: "echo broken >&2; exit 2"
"""


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("octoprint-js")


@pytest.fixture(scope="module")
def server(tmp: Path) -> Iterator[Server]:
    with running_server(tmp / "server", CONFIG.format(tmp=tmp)) as server:
        yield server


@pytest.fixture(scope="module")
def scripts() -> list[str]:
    return octoprint_client_scripts()


def client_page(browser: Browser, server: Server, scripts: list[str]) -> Page:
    """A page of sysmenu's origin with OctoPrint's client loaded as `OctoPrint`."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.url + "/api/version")  # any same-origin document without a CSP
    for script in scripts:
        page.add_script_tag(content=script)
    page.evaluate("base => { OctoPrint.options.baseurl = base; }", server.url + "/")
    return page


# The client's calls return jQuery promises; awaiting them yields the parsed JSON, and a
# failure rejects with the jqXHR, from which status and body are read.
CALL = """async ([expression, key]) => {
  if (key) OctoPrint.options.apikey = key;
  try {
    const data = await eval(expression);
    return {ok: true, data: data === undefined ? null : data};
  } catch (xhr) {
    return {ok: false, status: xhr.status, body: xhr.responseJSON || xhr.responseText};
  }
}"""


def call(page: Page, expression: str, key: str | None = None) -> dict[str, object]:
    result: dict[str, object] = page.evaluate(CALL, [expression, key])
    return result


def test_lists_and_executes_with_an_api_key(
    browser: Browser, server: Server, scripts: list[str], tmp: Path
) -> None:
    page = client_page(browser, server, scripts)
    try:
        listed = call(page, "OctoPrint.system.getCommands()", server.key)
        assert listed["ok"], listed
        data = listed["data"]
        assert isinstance(data, dict)
        assert set(data) == {"core", "custom", "plugin"}
        assert [c["action"] for c in data["core"]] == ["shutdown"]
        assert [c["action"] for c in data["custom"]] == ["touch", "divider", "fail"]
        assert data["custom"][0]["resource"] == f"{server.url}/api/system/commands/custom/touch"
        custom = call(page, "OctoPrint.system.getCommandsForSource('custom')", server.key)
        assert custom["ok"]
        assert custom["data"] == data["custom"]
        done = call(page, "OctoPrint.system.executeCommand('custom', 'touch')", server.key)
        assert done == {"ok": True, "data": None}
        assert (tmp / "touched").exists()
        failed = call(page, "OctoPrint.system.executeCommand('custom', 'fail')", server.key)
        assert failed["ok"] is False
        assert failed["status"] == 500
        body = failed["body"]
        assert isinstance(body, dict)
        assert "return code 2" in body["error"]
        assert "broken" in body["error"]
        missing = call(page, "OctoPrint.system.executeCommand('custom', 'nope')", server.key)
        assert missing["status"] == 404
    finally:
        page.context.close()


def test_without_a_key_it_is_refused(browser: Browser, server: Server, scripts: list[str]) -> None:
    page = client_page(browser, server, scripts)
    try:
        refused = call(page, "OctoPrint.system.getCommands()")
        assert refused["ok"] is False
        assert refused["status"] == 403
        wrong = call(page, "OctoPrint.system.getCommands()", "not-a-key")
        assert wrong["status"] == 403
    finally:
        page.context.close()


def test_in_a_logged_in_browser_it_uses_the_session_and_its_csrf_cookie(
    browser: Browser, server: Server, scripts: list[str], tmp: Path
) -> None:
    """As in OctoPrint's own page: no key, the session cookie, and the CSRF token that
    the client reads from the csrf_token_P<port> cookie."""
    page = client_page(browser, server, scripts)
    try:
        response = page.context.request.post(
            server.url + "/api/login", data={"user": "admin", "pass": "admin-pw"}
        )
        assert response.status == 200
        listed = call(page, "OctoPrint.system.getCommands()")
        assert listed["ok"], listed
        (tmp / "shutdown-ran").unlink(missing_ok=True)
        done = call(page, "OctoPrint.system.executeCommand('core', 'shutdown')")
        assert done == {"ok": True, "data": None}
        deadline = time.monotonic() + 10
        while not (tmp / "shutdown-ran").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (tmp / "shutdown-ran").exists()
        # without the CSRF cookie the same call is refused
        page.context.clear_cookies(name=f"csrf_token_P{server.port}")
        refused = call(page, "OctoPrint.system.executeCommand('custom', 'touch')")
        assert refused["status"] == 403
    finally:
        page.context.close()
