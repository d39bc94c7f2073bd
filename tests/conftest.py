"""Shared fixtures: a real app on a temporary store, driven in-process over ASGI."""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from sysmenu import passwords
from sysmenu.app import create_app
from sysmenu.config import Config, parse, replace
from sysmenu.store import Store

CONFIG = """\
server:
  commands:
    systemShutdownCommand: "true"
    systemRestartCommand: echo reboot
    serverRestartCommand: echo restart
system:
  actions:
    - action: hello
      name: Say hello
      command: echo hello
    - action: divider
    - action: fail
      name: Fail
      command: "echo out; echo err >&2; exit 3"
      confirm: Really fail?
    - action: ignored
      name: Ignored failure
      command: exit 7
      ignore: true
    - action: divider
    - action: later
      name: Later
      command: "sleep 0.2; echo done"
      async: true
    - action: nocommand
      name: No command here
    - action: hello
      name: Duplicate hello
      command: echo second
    - action: grüß
      name: Grüße ☕
      command: echo ☕
"""


@pytest.fixture(autouse=True)
def cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real argon2id at a test cost (production's costs 0.1 s per hash and per check;
    tests/test_passwords.py pins it)."""
    monkeypatch.setattr(passwords, "COST", passwords.Cost(time_cost=1, memory_cost=8, parallelism=1))


def _memory_temproot(root: str = "/dev/shm", room: int = 2 << 30) -> None:
    """Temporary directories (tmp_path) in memory when the machine has room there: each
    test's database is a real SQLite file all the same, but opening, checkpointing and
    closing it no longer wait for the disk (about 3 ms of the 6.5 a test's `env` cost).
    An explicit PYTEST_DEBUG_TEMPROOT (pytest's own setting) or --basetemp wins."""
    if "PYTEST_DEBUG_TEMPROOT" in os.environ or not os.access(root, os.W_OK | os.X_OK):
        return
    stat = os.statvfs(root)
    if stat.f_bavail * stat.f_frsize >= room:  # e.g. not a container's 64 MiB /dev/shm
        os.environ["PYTEST_DEBUG_TEMPROOT"] = root


_memory_temproot()

E2E = Path(__file__).parent / "e2e"
# One per core, at most 4 (each worker imports and collects everything: more only add start-up).
WORKERS = min(len(os.sched_getaffinity(0)), 4)


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    if pluginmanager.hasplugin("xdist"):
        pluginmanager.register(Workers(), "sysmenu-workers")
    else:  # a venv made before pytest-xdist joined the test extra (./scripts/test installs
        # it), or -p no:xdist: pyproject's addopts still parse, the run takes one process
        group = parser.getgroup("xdist", "pytest-xdist is not installed: one process")
        group.addoption("--numprocesses", default=None, help="ignored without pytest-xdist")
        group.addoption("--dist", default="no", help="ignored without pytest-xdist")


class Workers:
    """How many processes `--numprocesses=auto` (pyproject's addopts) runs the tests on."""

    @staticmethod
    def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
        """WORKERS for a run of whole directories of in-process tests (e.g. ``pytest tests
        --ignore=tests/e2e``), file by file (``--dist=loadfile``: a file's tests never run
        at the same time); one process (no xdist) when the run may take in tests/e2e (real
        servers, Chromium, Mosquitto, load, soak and leak checks run one at a time, as
        before), when it names only files or tests (starting workers costs more than it
        saves), and with -s."""
        if config.option.capture == "no":
            return 0
        ignored = {Path(p).resolve() for p in config.option.ignore or ()}
        paths = [Path(a.split("::")[0]).resolve() for a in config.args] or [Path(config.rootpath, "tests")]
        if not any(p.is_dir() for p in paths):
            return 0
        e2e = E2E.resolve()
        if e2e not in ignored and any(p == e2e or p in e2e.parents for p in paths if p.is_dir()):
            return 0
        return WORKERS if WORKERS > 1 else 0


TEST_HOST = "example.com"  # the in-process client's host


def with_test_host(config: Config) -> Config:
    """`config` answering to the test client's host too (sysmenu listens on loopback
    by default, so only loopback Host values would be answered)."""
    settings = config.sysmenu
    return replace(config, sysmenu=replace(settings, allowed_hosts=[*settings.allowed_hosts, TEST_HOST]))


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, bool]]:
    """uvloop: the loop uvicorn runs sysmenu on (uvicorn[standard]), so the in-process
    tests drive the app as it runs in production; its child processes are watched
    without a thread each (asyncio's own loop starts one per process on Python 3.11).
    tests/test_runner.py runs the runner on both loops."""
    return ("asyncio", {"use_uvloop": True})


@dataclass
class Env:
    client: httpx.AsyncClient
    store: Store
    admin_key: str
    user_key: str
    tmp: Path
    app: Starlette | None = None

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"X-Api-Key": key or self.admin_key}


@functools.cache
def parsed(text: str) -> Config:
    """`text` parsed once per session (a Config is immutable: each app may share it)."""
    return with_test_host(parse(text, "test.yaml"))


@dataclass(frozen=True)
class Seed:
    """A database file as the `env` fixture starts from, and its two keys."""

    path: Path
    admin_key: str
    user_key: str


@pytest.fixture(scope="session")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    """The schema, user admin (admins) and user bob (users) with a key each: made once per
    session by this code's Store, copied for each test."""
    path = tmp_path_factory.mktemp("seed") / "sysmenu.db"
    store = Store(path)
    store.accounts.add_user("admin", ["admins"])
    store.accounts.add_user("bob", ["users"])
    admin_key, user_key = store.accounts.create_key("admin"), store.accounts.create_key("bob")
    store.close()
    return Seed(path, admin_key, user_key)


@pytest.fixture
async def env(request: pytest.FixtureRequest, tmp_path: Path, seed: Seed) -> AsyncIterator[Env]:
    """The app on CONFIG (or the text of a `@pytest.mark.config(...)` marker), on a real
    Store over a copy of `seed` (opening it checks and completes the schema as at any
    start-up; the tests that build their own Store make fresh ones)."""
    marker = request.node.get_closest_marker("config")
    text = marker.args[0] if marker else CONFIG
    text = text.replace("{tmp}", str(tmp_path))  # e.g. a gate file the test creates
    shutil.copyfile(seed.path, tmp_path / "sysmenu.db")
    store = Store(tmp_path / "sysmenu.db")
    admin_key, user_key = seed.admin_key, seed.user_key
    app = create_app(parsed(text), store)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://example.com") as client:
            yield Env(client, store, admin_key, user_key, tmp_path, app)
    store.close()


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Wait (polling, bounded) until `condition()` holds: for a state the test cannot await."""
    for _ in range(int(within / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"not within {within:g} s")
