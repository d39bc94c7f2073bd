"""The confirm dialog as a form for a command's arguments, in Debian's Chromium."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.browser import command, log_in_to_menu, open_page, wait_for
from tests.e2e.server import Server, running_server

pytestmark = pytest.mark.e2e


def config_text(tmp: Path) -> str:
    # The command writes what it received, one JSON object, to a file the test reads.
    return f"""\
system:
  actions:
    - action: restart_service
      name: Restart a service
      confirm: Restart <b>now</b>?
      argv: [/usr/bin/python3, -c, "import json, sys; json.dump(sys.argv[1:], open('{tmp}/got', 'w'))",
             "{{unit}}", "{{delay}}", "{{force}}", "{{note}}", "{{ratio}}", "{{token}}"]
      arguments:
        - name: unit
          label: Service
          type: choice
          choices: [nginx, {{value: mosquitto, label: MQTT broker}}]
        - name: delay
          label: Delay in seconds
          type: int
          min: 0
          max: 600
          default: 5
          description: Wait this long first
        - name: force
          label: Force it
          type: bool
        - name: note
          label: Note
          type: string
          pattern: "[a-z]+"
          required: false
        - name: ratio
          label: Ratio
          type: float
          min: 0
          max: 1
          default: 0.5
        - name: token
          label: Token
          type: string
          secret: true
          default: hunter2
"""


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("page-arguments")


@pytest.fixture(scope="module")
def server(tmp: Path) -> Iterator[Server]:
    with running_server(tmp / "server", config_text(tmp)) as server:
        yield server


@pytest.fixture(
    params=[{"width": 1280, "height": 800}, {"width": 390, "height": 844}], ids=["desktop", "phone"]
)
def context(browser: Browser, request: pytest.FixtureRequest) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=request.param, has_touch=request.param["width"] < 500)
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def menu(context: BrowserContext, server: Server, tmp: Path) -> Iterator[Page]:
    (tmp / "got").unlink(missing_ok=True)
    page, errors = open_page(context, server.url + "/")
    yield log_in_to_menu(page)
    assert errors == []


def test_each_type_has_its_input_with_defaults(menu: Page) -> None:
    command(menu, "Restart a service").click()
    dialog = menu.locator("#confirm")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".confirm-text b")).to_have_text("now")
    service = dialog.get_by_label("Service")
    expect(service).to_be_focused()
    assert service.evaluate("e => e.tagName") == "SELECT"
    assert service.locator("option").all_inner_texts() == ["nginx", "MQTT broker"]
    delay = dialog.get_by_label("Delay in seconds")
    expect(delay).to_have_attribute("type", "number")
    expect(delay).to_have_attribute("min", "0")
    expect(delay).to_have_attribute("max", "600")
    expect(delay).to_have_value("5")
    expect(dialog.get_by_text("Wait this long first")).to_be_visible()
    expect(dialog.get_by_label("Force it")).to_have_attribute("type", "checkbox")
    expect(dialog.get_by_label("Force it")).not_to_be_checked()
    expect(dialog.get_by_label("Note")).to_have_attribute("pattern", "[a-z]+")
    expect(dialog.get_by_label("Ratio")).to_have_attribute("step", "any")
    expect(dialog.get_by_label("Token")).to_have_attribute("type", "password")


def test_values_typed_by_keyboard_reach_the_command(menu: Page, tmp: Path) -> None:
    command(menu, "Restart a service").click()
    dialog = menu.locator("#confirm")
    dialog.get_by_label("Service").select_option("mosquitto")
    menu.keyboard.press("Tab")
    menu.keyboard.press("Control+A")
    menu.keyboard.type("42")
    menu.keyboard.press("Tab")
    menu.keyboard.press("Space")  # the checkbox
    menu.keyboard.press("Tab")
    menu.keyboard.type("quick")
    dialog.get_by_role("button", name="Proceed").click()
    expect(dialog).to_be_hidden()
    assert wait_for(lambda: (tmp / "got").exists())
    assert json.loads((tmp / "got").read_text()) == ["mosquitto", "42", "true", "quick", "0.5", "hunter2"]
    expect(menu.locator("#run-args")).to_contain_text('unit = "mosquitto"')
    expect(menu.locator("#run-args")).to_contain_text('token = "********"')
    expect(menu.locator("#run-args")).not_to_contain_text("hunter2")


def test_server_errors_show_beside_the_field_and_nothing_runs(menu: Page, tmp: Path) -> None:
    command(menu, "Restart a service").click()
    dialog = menu.locator("#confirm")
    # A value the browser lets through but the server refuses: above the maximum.
    delay = dialog.get_by_label("Delay in seconds")
    delay.evaluate("e => { e.removeAttribute('max'); }")
    delay.fill("601")
    dialog.get_by_role("button", name="Proceed").click()
    error = dialog.locator("#arg-delay-error")
    expect(error).to_have_text("should be at most 600")
    expect(delay).to_have_attribute("aria-invalid", "true")
    expect(delay).to_be_focused()
    expect(dialog).to_be_visible()
    assert not (tmp / "got").exists()
    delay.fill("1")
    dialog.get_by_role("button", name="Proceed").click()
    expect(dialog).to_be_hidden()
    assert wait_for(lambda: (tmp / "got").exists())
    assert json.loads((tmp / "got").read_text())[1] == "1"


def test_the_browser_checks_the_pattern_first(menu: Page, tmp: Path) -> None:
    command(menu, "Restart a service").click()
    dialog = menu.locator("#confirm")
    dialog.get_by_label("Note").fill("NOT LOWER")
    dialog.get_by_role("button", name="Proceed").click()
    assert dialog.get_by_label("Note").evaluate("e => e.validity.patternMismatch") is True
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert not (tmp / "got").exists()
