"""A changed config file takes effect; a broken one is reported and the last good one stays."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from sysmenu.config import load
from sysmenu.config import replace as replace_settings
from sysmenu.reload import ConfigWatcher
from sysmenu.state import State
from sysmenu.store import Store

pytestmark = pytest.mark.anyio
GOOD = "system:\n  actions:\n    - action: one\n      command: echo one\n"
BETTER = "sysmenu:\n  default_timeout: 7\nsystem:\n  actions:\n    - action: two\n      command: echo two\n"
BROKEN = "system:\n  actions:\n    - action: three\n      timeout: soon\n"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[State]:
    path = tmp_path / "config.yaml"
    path.write_text(GOOD)
    store = Store(tmp_path / "db")
    yield State(load(path), store)
    store.close()


def replace(path: Path, text: str) -> None:
    """Write a new version the way editors do (new file renamed over the old)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


async def test_good_change_takes_effect(app: State, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    watcher = ConfigWatcher(app, str(path), 1)
    assert await watcher.check() is False
    replace(path, BETTER)
    assert await watcher.check() is True
    assert app.catalogue.get("custom", "two") is not None
    assert app.catalogue.get("custom", "one") is None
    assert app.runner.default_timeout == 7
    assert app.config_state.error is None
    (entry,) = app.store.audit.list(limit=1)
    assert entry["event"] == "config-reloaded"
    assert entry["detail"] == {"source": str(path), "added": ["custom:two"], "removed": ["custom:one"]}


async def test_broken_change_keeps_last_good_and_reports(app: State, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    watcher = ConfigWatcher(app, str(path), 1)
    replace(path, BROKEN)
    assert await watcher.check() is True
    assert app.catalogue.get("custom", "one") is not None
    error = app.config_state.error
    assert error is not None and "line 4: system.actions.0.timeout = 'soon'" in error
    assert app.store.audit.list()[0]["event"] == "config-rejected"
    replace(path, GOOD.replace("one", "uno"))
    await watcher.check()
    assert app.config_state.error is None and app.catalogue.get("custom", "uno") is not None


async def test_deleted_file_keeps_last_good(app: State, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    watcher = ConfigWatcher(app, str(path), 1)
    path.unlink()
    await watcher.check()
    assert app.catalogue.get("custom", "one") is not None
    assert "no such file" in (app.config_state.error or "")


async def test_address_and_data_dir_wait_for_a_restart(app: State, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    watcher = ConfigWatcher(app, str(path), 1)
    replace(path, "sysmenu:\n  port: 6000\n  data_dir: /elsewhere\n" + GOOD)
    await watcher.check()
    assert app.config.sysmenu.port == 5000 and app.config.sysmenu.data_dir is None
    assert app.config_state.pending_restart == {"port": 6000, "data_dir": "/elsewhere"}
    replace(path, GOOD)
    await watcher.check()
    assert app.config_state.pending_restart == {}


async def test_settings_read_at_start_up_wait_for_a_restart(app: State, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    watcher = ConfigWatcher(app, str(path), 1)
    replace(path, "sysmenu:\n  log_level: debug\n  header_timeout: 3\n  default_timeout: 7\n" + GOOD)
    await watcher.check()
    assert (app.config.sysmenu.log_level, app.config.sysmenu.header_timeout) == ("info", 10.0)
    assert app.runner.default_timeout == 7  # the others take effect at once
    assert app.config_state.pending_restart == {"log_level": "debug", "header_timeout": 3}


async def test_data_dir_given_on_the_command_line_is_no_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(GOOD)
    config = load(path)
    config = replace_settings(config, sysmenu=replace_settings(config.sysmenu, data_dir=tmp_path / "d"))
    store = Store(tmp_path / "db")
    app = State(config, store)
    watcher = ConfigWatcher(app, str(path), 1)
    replace(path, BETTER)
    with caplog.at_level(logging.INFO, "sysmenu"):
        assert await watcher.check() is True
    assert app.runner.default_timeout == 7
    assert "changed" not in caplog.text and app.config_state.pending_restart == {}
    store.close()


async def test_empty_file_is_an_error_not_an_empty_menu(app: State, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    watcher = ConfigWatcher(app, str(path), 1)
    path.write_text("")
    assert await watcher.check() is True
    assert "the file is empty" in (app.config_state.error or "")
    assert app.catalogue.get("custom", "one") is not None


async def test_file_still_being_written_is_not_read(app: State, tmp_path: Path) -> None:
    """Truncated and written in two steps (as cp does): the half-written file is never used."""
    path = tmp_path / "config.yaml"
    watcher = ConfigWatcher(app, str(path), 1)
    whole = GOOD + "    - action: two\n      command: echo two\n"
    with path.open("w") as fh:
        assert await watcher.check() is True  # empty, open for writing
        fh.write(whole[: len(GOOD)])
        fh.flush()
        assert await watcher.check() is True  # a valid but partial config, still open
        assert "being written" in (app.config_state.error or "")
        assert app.catalogue.get("custom", "one") is not None
        fh.write(whole[len(GOOD) :])
    assert await watcher.check() is True
    assert app.config_state.error is None
    assert app.catalogue.get("custom", "two") is not None


async def test_rule_naming_nobody_is_a_rejected_change(app: State, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    watcher = ConfigWatcher(app, str(path), 1)
    replace(path, GOOD + "      allow: [nobody]\n")
    await watcher.check()
    assert app.config.access_rules() == {("custom", "one"): app.config.access_rules()[("custom", "one")]}
    assert not app.config.access_rules()[("custom", "one")].allow  # the last good config stays
    error = app.config_state.error or ""
    assert "config.yaml, line 5: custom:one: unknown user or group 'nobody'" in error
    (entry,) = app.store.audit.list(limit=1)
    assert entry["event"] == "config-rejected" and entry["detail"]["changed"] == ["custom:one"]
    app.store.accounts.add_user("nobody", ["users"])
    replace(path, GOOD + "      allow: [nobody]\n")
    await watcher.check()
    assert app.config_state.error is None
    assert app.config.access_rules()[("custom", "one")].allow == {"nobody"}
