"""The System menu page in a real browser (Debian's Chromium) against a real server."""

from __future__ import annotations

import getpass
import http.server
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.browser import command, log_in, log_in_to_menu, open_page, wait_for
from tests.e2e.server import ADMIN_PASSWORD, Server, running_server, sysmenu

pytestmark = pytest.mark.e2e


def config_text(tmp: Path) -> str:
    return f"""\
server:
  commands:
    systemShutdownCommand: touch {tmp}/shutdown-ran
system:
  actions:
    - action: divider
    - action: touch
      name: Touch a file
      command: touch {tmp}/touched
      confirm: >-
        <b>Really</b> touch it?<script>document.title='pwned'</script>
        <img src=x onerror="document.title='pwned'"><a href="javascript:alert(1)">a link</a>
    - action: divider
    - action: divider
    - action: fail
      name: Fail loudly
      command: "echo some output; echo a bad thing >&2; exit 3"
    - action: slow
      name: Count slowly
      command: "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do echo tick $i; sleep 0.5; done"
    - action: broken
      name: Broken
      command: no-such-program-xyz --now
    - action: divider
sysmenu:
  groups:
    kiosks: []
  core_access:
    shutdown:
      deny: [kiosks]
"""


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("page")


@pytest.fixture(scope="module")
def server(tmp: Path) -> Iterator[Server]:
    with running_server(tmp / "server", config_text(tmp)) as server:
        yield server


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context()
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext, server: Server) -> Page:
    page, _ = open_page(context, server.url + "/")
    return page


@pytest.fixture
def menu(page: Page) -> Page:
    return log_in_to_menu(page)


def runs_of(server: Server, action: str) -> list[dict[str, object]]:
    with server.client() as client:
        runs: list[dict[str, object]] = client.get("/api/runs", params={"action": action}).json()["runs"]
        return runs


def test_login_then_the_menu_with_dividers_in_place(page: Page) -> None:
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#menu")).to_be_hidden()
    log_in(page, "wrong")
    expect(page.locator("#login-error")).to_have_text("Wrong user name or password")
    log_in(page)
    expect(page.locator("#menu")).to_be_visible()
    expect(page.locator("#who")).to_have_text("admin")
    items = page.locator("#commands > li")
    expect(items).to_have_count(7)
    shape = items.evaluate_all(
        "els => els.map(e => e.className === 'divider' ? '--' : e.querySelector('button').innerText.trim())"
    )
    # core, then custom; a divider between the groups, the config's own dividers inside
    # custom kept once, none at the edges of a group
    assert shape == ["Shutdown", "--", "Touch a file", "--", "Fail loudly", "Count slowly", "Broken"]
    assert items.nth(1).get_attribute("role") == "separator"


def test_admins_see_which_commands_will_fail(menu: Page) -> None:
    warnings = menu.locator("#commands .warning")
    expect(warnings).to_have_count(1)
    expect(warnings).to_have_text(
        "⚠ Broken will fail: no-such-program-xyz is not installed "
        f"(or not executable for {getpass.getuser()}). "
        "Fix: install no-such-program-xyz or fix the command line"
    )
    described = command(menu, "Broken").get_attribute("aria-describedby")
    assert described and menu.locator(f"#{described}").is_visible()


def test_cancel_runs_nothing_and_confirm_text_is_rendered_safely(
    menu: Page, server: Server, tmp: Path
) -> None:
    command(menu, "Touch a file").click()
    dialog = menu.locator("#confirm")
    expect(dialog).to_be_visible()
    expect(dialog.locator("b")).to_have_text("Really")  # allowed HTML is HTML
    expect(dialog.locator("#confirm-text")).to_contain_text("touch it?")
    assert dialog.locator("script, img, [onerror]").count() == 0
    assert dialog.locator("a").get_attribute("href") is None  # javascript: links lose their target
    assert menu.title() == "System menu"
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    # and by keyboard: Escape cancels too
    command(menu, "Touch a file").focus()
    menu.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    menu.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    time.sleep(0.5)
    assert not (tmp / "touched").exists()
    assert runs_of(server, "touch") == []


def test_confirm_runs_the_command(menu: Page, server: Server, tmp: Path) -> None:
    command(menu, "Touch a file").click()
    menu.locator("#confirm").get_by_role("button", name="Proceed").click()
    assert wait_for((tmp / "touched").exists)
    item = menu.locator("li.command", has_text="Touch a file")
    expect(item.locator(".state")).to_contain_text("✓ done")
    expect(menu.locator("#run-state")).to_contain_text("✓ done")
    expect(menu.locator("#runs")).to_contain_text("Touch a file")
    runs = runs_of(server, "touch")
    assert [(r["state"], r["user"], r["auth"]) for r in runs] == [("ok", "admin", "session")]


def test_a_failure_shows_its_output(menu: Page) -> None:
    command(menu, "Fail loudly").click()
    expect(menu.locator("#run-state")).to_contain_text("failed with exit code 3")
    output = menu.locator("#run-output")
    expect(output).to_contain_text("some output")
    expect(output.locator(".stderr")).to_contain_text("a bad thing")
    state = menu.locator("li.command", has_text="Fail loudly").locator(".state")
    expect(state).to_contain_text("exit code 3")


def test_a_long_run_shows_live_output_and_can_be_killed(menu: Page, server: Server) -> None:
    button = command(menu, "Count slowly")
    button.click()
    expect(button).to_be_disabled()
    item = menu.locator("li.command", has_text="Count slowly")
    expect(item.locator(".state")).to_contain_text("running")
    expect(menu.locator("#run-output")).to_contain_text("tick 2")  # live, long before its end
    assert "tick 20" not in menu.locator("#run-output").inner_text()
    # a second page (another tab, or a reload) sees it running too
    other = menu.context.new_page()
    other.goto(server.url + "/")
    expect(command(other, "Count slowly")).to_be_disabled()
    expect(other.locator("#run-output")).to_contain_text("tick")
    other.close()
    menu.get_by_role("button", name="Kill").click()
    expect(menu.locator("#run-state")).to_contain_text("killed")
    expect(button).to_be_enabled()
    assert runs_of(server, "slow")[0]["state"] == "killed"


def test_shutdown_asks_for_the_password_again(menu: Page, server: Server, tmp: Path) -> None:
    command(menu, "Shutdown").click()
    dialog = menu.locator("#confirm")
    password = dialog.get_by_label("Your password, to confirm")
    expect(password).to_be_visible()
    dialog.get_by_role("button", name="Proceed").click()  # empty: the browser refuses
    expect(dialog).to_be_visible()
    password.fill("not the password")
    dialog.get_by_role("button", name="Proceed").click()
    expect(dialog.locator("#confirm-error")).to_have_text("Wrong password")
    assert not (tmp / "shutdown-ran").exists()
    password.fill(ADMIN_PASSWORD)
    dialog.get_by_role("button", name="Proceed").click()
    expect(dialog).to_be_hidden()
    assert wait_for((tmp / "shutdown-ran").exists)
    assert runs_of(server, "shutdown")[0]["auth"] == "session"


class _Attacker(http.server.BaseHTTPRequestHandler):
    """Another site on the same machine: same-site for cookies (ports do not count),
    so only the CSRF token stands between its form and the command."""

    target = ""

    def do_GET(self) -> None:
        body = f"""<!doctype html><title>win a prize</title>
<form method="post" action="{self.target}" enctype="text/plain">
<input name='{{"x":"' value='"}}'></form>
<script>document.forms[0].submit()</script>""".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_forged_form_post_is_refused(menu: Page, server: Server, tmp: Path) -> None:
    _Attacker.target = f"{server.url}/api/system/commands/custom/touch"
    before = len(runs_of(server, "touch"))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Attacker) as attacker:
        thread = threading.Thread(target=attacker.serve_forever, daemon=True)
        thread.start()
        try:
            forged = menu.context.new_page()
            with forged.expect_response(_Attacker.target) as response:
                forged.goto(f"http://127.0.0.1:{attacker.server_address[1]}/")
            assert response.value.status == 403
            assert "CSRF" in response.value.json()["error"]
        finally:
            attacker.shutdown()
    assert len(runs_of(server, "touch")) == before


def test_logout(menu: Page, server: Server) -> None:
    menu.get_by_role("button", name="Log out").click()
    expect(menu.locator("#login")).to_be_visible()
    expect(menu.locator("#menu")).to_be_hidden()
    menu.reload()
    expect(menu.locator("#login")).to_be_visible()
    assert menu.context.request.get(server.url + "/api/system/commands").status == 403


def test_phone_sized_screen_and_dark_theme(browser: Browser, server: Server, tmp: Path) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, color_scheme="dark", is_mobile=True)
    try:
        page = context.new_page()
        page.goto(server.url + "/")
        log_in(page)
        expect(command(page, "Fail loudly")).to_be_visible()
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= 360  # nothing sticks out sideways
        box = command(page, "Touch a file").bounding_box()
        assert box is not None
        assert box["height"] >= 40  # a finger can hit it
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        channels = [int(c) for c in background[background.index("(") + 1 : -1].split(",")[:3]]
        assert max(channels) < 60, background  # dark
        shots = Path(os.environ.get("SYSMENU_SCREENSHOTS", tmp))
        page.screenshot(path=str(shots / "page-phone-dark.png"), full_page=True)
        assert (shots / "page-phone-dark.png").stat().st_size > 5000
    finally:
        context.close()


def test_light_theme_on_a_desktop(browser: Browser, server: Server, tmp: Path) -> None:
    context = browser.new_context(viewport={"width": 1100, "height": 700}, color_scheme="light")
    try:
        page = context.new_page()
        page.goto(server.url + "/")
        log_in(page)
        command(page, "Fail loudly").click()
        expect(page.locator("#run-output")).to_contain_text("a bad thing")
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        channels = [int(c) for c in background[background.index("(") + 1 : -1].split(",")[:3]]
        assert min(channels) > 200, background  # light
        shots = Path(os.environ.get("SYSMENU_SCREENSHOTS", tmp))
        page.screenshot(path=str(shots / "page.png"))
        assert (shots / "page.png").stat().st_size > 5000
    finally:
        context.close()


def test_the_page_loads_nothing_from_elsewhere(context: BrowserContext, server: Server) -> None:
    requested: list[str] = []
    page = context.new_page()
    page.on("request", lambda request: requested.append(request.url))
    page.goto(server.url + "/")
    log_in(page)
    expect(page.locator("#menu")).to_be_visible()
    assert requested
    assert all(url.startswith(server.url + "/") for url in requested), requested


def test_viewer_sees_no_run_buttons(context: BrowserContext, server: Server) -> None:
    sysmenu(
        "user", "add", "viewer", "--group", "viewers", "--password", "viewer-pw",
        data_dir=server.data_dir, config=server.config,
    )  # fmt: skip
    with server.client() as client:  # something in the history to read
        r = client.post("/api/system/commands/custom/fail", headers={"Prefer": "respond-async"})
        assert r.status_code == 202
    page = context.new_page()
    page.goto(server.url + "/")
    log_in(page, "viewer-pw", "viewer")
    expect(page.locator("#menu")).to_be_visible()
    # the whole menu, read-only: every command shown, none with a button
    expect(page.locator("#commands li.command")).to_have_count(5)
    expect(page.locator("#commands li.command .readonly").first).to_have_text("Shutdown")
    expect(page.locator("#commands button")).to_have_count(0)
    expect(page.locator("#history")).to_be_visible()  # with its history
    page.locator("#runs button").first.click()
    expect(page.locator("#run-output")).to_contain_text("some output")
    expect(page.locator("#kill")).to_be_hidden()
    expect(page.locator("#audit")).to_be_hidden()


def test_operator_denied_shutdown_has_no_shutdown(context: BrowserContext, server: Server) -> None:
    sysmenu(
        "user", "add", "kiosk", "--group", "operators", "--group", "kiosks", "--password", "kiosk-pw",
        data_dir=server.data_dir, config=server.config,
    )  # fmt: skip
    page = context.new_page()
    page.goto(server.url + "/")
    log_in(page, "kiosk-pw", "kiosk")
    expect(page.locator("#menu")).to_be_visible()
    expect(page.locator("#commands button.run")).to_have_count(4)
    names = page.locator("#commands button.run").all_inner_texts()
    assert [n.strip() for n in names] == ["Touch a file", "Fail loudly", "Count slowly", "Broken"]
    expect(page.locator("#commands")).not_to_contain_text("Shutdown")
    expect(page.locator("#audit")).to_be_hidden()  # an operator is no admin


def test_admin_reads_the_audit_log(menu: Page) -> None:
    audit = menu.locator("#audit")
    expect(audit).to_be_visible()
    expect(audit.locator("#audit-rows tr").first).to_contain_text("login")
    audit.get_by_label("Event").fill("user-added")
    audit.get_by_role("button", name="Show").click()
    expect(audit.locator("#audit-rows tr").last).to_contain_text("name=admin")
    audit.get_by_label("Since").fill("not a time")
    audit.get_by_role("button", name="Show").click()
    expect(menu.locator("#audit-error")).to_contain_text("since")
