"""Load and soak with wrk against a real server: no errors, flat memory and file descriptors.

Each target is driven at increasing connection counts for SYSMENU_SOAK_SECONDS per step
(default 2, so CI stays near 30 s); a longer soak:

    SYSMENU_SOAK_SECONDS=60 ./scripts/test tests/e2e/test_soak.py

wrk's own "Non-2xx or 3xx responses" and "Socket errors" lines are failures, and a Lua
script counts every status, so a test can allow exactly the statuses it expects.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import Server, running_server
from tests.proctable import zombies_of

WRK = shutil.which("wrk") or "/usr/bin/wrk"
SECONDS = float(os.environ.get("SYSMENU_SOAK_SECONDS", "2"))
STEPS = (1, 16, 64, 128)
RSS_GROWTH_KB = 15 * 1024  # generous: a leak of a few hundred bytes per request shows at once
FD_SLACK = 5

CONFIG = """\
sysmenu:
  log_level: warning
  max_connections: 512
system:
  actions:
    - action: async_true
      name: Async true
      command: "true"
      async: true
      concurrency: 32
      queue: true
    - action: sync_true
      name: Sync true
      command: "true"
      concurrency: 32
      queue: true
    - action: locked
      name: One at a time, checked by a lock directory
      command: "mkdir {tmp}/lock && sleep 0.05 && rmdir {tmp}/lock"
      queue: false
"""

# Counts every response status per thread; done() prints them for the test to read.
COUNTER = """\
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) counts = {} end
function response(status, headers, body) counts[status] = (counts[status] or 0) + 1 end
function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts")) do
      io.write(string.format("STATUS %d %d\\n", status, n))
    end
  end
end
"""

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.path.exists(WRK), reason="wrk is not installed (scripts/test installs it)"),
]


@dataclass
class Load:
    requests: int
    non_2xx_3xx: int
    socket_errors: dict[str, int]
    statuses: dict[int, int]
    output: str


def wrk(server: Server, script: Path, method: str, path: str, connections: int, seconds: float) -> Load:
    script.write_text(f'wrk.method = "{method}"\n' + COUNTER)
    cmd = [
        WRK,
        f"-t{min(2, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-H",
        f"X-Api-Key: {server.key}",
        "-s",
        str(script),
        f"{server.url}{path}",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    total = re.search(r"(\d+) requests in", out)
    assert total, out
    non = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    socket_errors = {}
    if errors:
        socket_errors = dict(
            zip(("connect", "read", "write", "timeout"), map(int, errors.groups()), strict=True)
        )
    statuses: dict[int, int] = {}
    for status, n in re.findall(r"^STATUS (\d+) (\d+)$", out, re.MULTILINE):
        statuses[int(status)] = statuses.get(int(status), 0) + int(n)
    return Load(int(total.group(1)), int(non.group(1)) if non else 0, socket_errors, statuses, out)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def settled_fds(pid: int, ceiling: int, timeout: float = 10.0) -> int:
    """The server's fd count once closing connections are gone (polled, bounded)."""
    deadline = time.monotonic() + timeout
    count = fd_count(pid)
    while count > ceiling and time.monotonic() < deadline:
        time.sleep(0.1)
        count = fd_count(pid)
    return count


def wait_idle(http: httpx.Client, timeout: float = 10.0) -> None:
    """Poll (bounded) until no run is running: wrk stops mid-request, the run goes on."""
    deadline = time.monotonic() + timeout
    while http.get("/api/status").json()["running"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert http.get("/api/status").json()["running"] == []


def all_runs(http: httpx.Client, action: str) -> list[dict[str, object]]:
    runs: list[dict[str, object]] = []
    params: dict[str, object] = {"action": action, "limit": 200}
    for _ in range(10_000):  # bounded paging
        page = http.get("/api/runs", params=params).json()
        runs += page["runs"]
        if "next" not in page:
            return runs
        params["before"] = page["runs"][-1]["id"]
    raise AssertionError("paging did not end")


TARGETS = [
    ("GET", "/api/system/commands"),
    ("POST", "/api/system/commands/custom/async_true"),
    ("POST", "/api/system/commands/custom/sync_true"),
]


def test_wrk_steps_no_errors_flat_memory_and_fds(tmp_path: Path) -> None:
    with running_server(tmp_path, CONFIG.format(tmp=tmp_path)) as server:
        pid = server.process.pid
        script = tmp_path / "count.lua"
        for method, path in TARGETS:  # warm-up: imports, caches, SQLite pages, allocator arenas
            warm = wrk(server, script, method, path, 16, 1)
            assert warm.requests > 0, warm.output
        time.sleep(0.5)  # the warm-up's connections close
        rss_before, fds_before = rss_kb(pid), fd_count(pid)
        samples = []
        for (method, path), connections in itertools.product(TARGETS, STEPS):
            load = wrk(server, script, method, path, connections, SECONDS)
            where = f"{method} {path} at {connections} connections"
            assert load.requests > 0, f"{where}: no requests\n{load.output}"
            assert load.non_2xx_3xx == 0, f"{where}: {load.statuses}\n{load.output}"
            assert not any(load.socket_errors.values()), f"{where}: {load.socket_errors}\n{load.output}"
            expected = {200} if method == "GET" else {204}
            assert set(load.statuses) == expected, f"{where}: {load.statuses}"
            assert sum(load.statuses.values()) >= load.requests - connections  # wrk's tally agrees
            samples.append((where, load.requests, rss_kb(pid), fd_count(pid)))
        fds_after = settled_fds(pid, fds_before + FD_SLACK)
        rss_peak = max(rss for _, _, rss, _ in samples)
        rss_after = rss_kb(pid)
        report = "\n".join(f"{w}: {n} requests, RSS {r} kB, {f} fds" for w, n, r, f in samples)
        assert rss_peak - rss_before < RSS_GROWTH_KB, f"RSS grew from {rss_before} kB:\n{report}"
        assert rss_after - rss_before < RSS_GROWTH_KB, f"RSS {rss_before} -> {rss_after} kB:\n{report}"
        assert fds_after <= fds_before + FD_SLACK, f"fds {fds_before} -> {fds_after}:\n{report}"
        assert zombies_of(pid) == []
        with server.client() as http:
            wait_idle(http)
            runs = http.get("/api/runs", params={"state": "failed"}).json()["runs"]
            assert runs == []
        assert "Traceback" not in server.output()
        print(f"RSS {rss_before} -> {rss_after} kB, fds {fds_before} -> {fds_after}\n{report}")


def test_concurrency_1_command_never_runs_twice_at_once(tmp_path: Path) -> None:
    with running_server(tmp_path, CONFIG.format(tmp=tmp_path)) as server:
        load = wrk(server, tmp_path / "count.lua", "POST", "/api/system/commands/custom/locked", 64, SECONDS)
        assert load.statuses.get(204, 0) >= 1, load.output
        assert load.statuses.get(409, 0) >= 1, load.output  # others were refused while one ran
        assert set(load.statuses) <= {204, 409}, load.statuses  # a 500 would be a run that saw the lock
        assert not any(load.socket_errors.values()), load.output
        with server.client() as http:
            wait_idle(http)
            runs = all_runs(http, "locked")
        states = {str(r["state"]) for r in runs}
        assert states == {"ok"}, states  # a run that found the lock taken would have failed
        assert len(runs) >= load.statuses[204]  # every 204 is a recorded run (wrk may cut the last)
        spans = sorted((float(r["started"]), float(r["ended"])) for r in runs)  # type: ignore[arg-type]
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start, "two runs of a concurrency: 1 command overlapped"
        assert not (tmp_path / "lock").exists()
        assert zombies_of(server.process.pid) == []
