"""The measurements: memory, wrk load, sequential executes, the spawn floor."""

from __future__ import annotations

import math
import re
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import httpx

WRK = shutil.which("wrk") or "/usr/bin/wrk"
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 50 samples is the largest but one...)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)


# -- memory ------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    todo = [pid]
    while todo and len(found) < 1000:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo.extend(int(c) for c in task.read_text().split())
            except OSError:
                continue
    return found


def rss_mb(pid: int, settle: float = 5.0) -> float:
    """Resident memory (VmRSS) of `pid` and its lasting descendants, in MiB.

    Commands the server runs are not its memory: a child caught between its fork and
    its exec shows the whole server's pages again. So the reading waits (up to
    `settle` seconds) until the processes below `pid` are the same twice in a row,
    ignoring ones that come and go.
    """
    deadline = time.monotonic() + settle
    seen = _descendants(pid)
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = _descendants(pid)
        if now == seen and len(now) == len(set(now)):
            break
        seen = now
    total_kb = 0
    for p in _descendants(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if match:
            total_kb += int(match.group(1))
    return total_kb / 1024


# -- wrk ---------------------------------------------------------------------


def _duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unknown wrk duration {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> dict[str, float]:
    """Requests/s, p50 and p99 (ms) and error counts from ``wrk --latency`` output."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    if not (rps and p50 and p99):
        raise ValueError(f"cannot read wrk's output:\n{output}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "rps": float(rps.group(1)),
        "p50_ms": _duration_ms(p50.group(1)),
        "p99_ms": _duration_ms(p99.group(1)),
        "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": float(sum(int(g) for g in errors.groups())) if errors else 0.0,
    }


def wrk(url: str, key: str, connections: int, duration: int) -> dict[str, float]:
    """``wrk`` with one thread (the machine's other core is the server's) and the key."""
    cmd = [
        WRK, "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "--latency",
        "-H", f"X-Api-Key: {key}", url,
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed: {result.stdout}{result.stderr}")
    return parse_wrk(result.stdout)


# -- executes ----------------------------------------------------------------


def execute_latencies(url: str, key: str, path: str, count: int, warmup: int = 2) -> list[float]:
    """`count` sequential POSTs over one keep-alive connection; each must answer 204."""
    timings: list[float] = []
    with httpx.Client(base_url=url, headers={"X-Api-Key": key}, timeout=30) as client:
        for i in range(warmup + count):
            started = time.perf_counter()
            response = client.post(path)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 204:
                raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:300]}")
            if i >= warmup:
                timings.append(elapsed)
    return timings


def spawn_latencies(count: int) -> list[float]:
    """The floor of a command: ``subprocess.run(["/bin/sh", "-c", "true"])`` from Python, in ms."""
    timings: list[float] = []
    for _ in range(count):
        started = time.perf_counter()
        subprocess.run(["/bin/sh", "-c", "true"], check=True)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def summary(timings: list[float]) -> dict[str, float]:
    return {"p50_ms": percentile(timings, 50), "p99_ms": percentile(timings, 99)}
