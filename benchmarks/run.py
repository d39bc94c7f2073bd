"""One benchmark run: set the servers up, measure them in alternating rounds, take medians."""

from __future__ import annotations

import datetime
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from sysmenu import __version__ as sysmenu_version

from . import coldstart, measure, octoprint_ref
from .servers import ASYNC_PATH, LIST_PATH, SYNC_PATH, Server, floor_server, octoprint_server, sysmenu_server

SERVERS = ("sysmenu", "octoprint", "floor")
Metrics = dict[str, float]


@dataclass(frozen=True)
class Options:
    rounds: int = 3
    connections: tuple[int, ...] = (1, 8, 32, 64)
    duration: int = 3  # seconds of wrk per connection count (wrk takes whole seconds)
    warmup: int = 1  # seconds of wrk before the first count (not recorded)
    executes: int = 50  # sequential POSTs per command kind
    spawns: int = 200  # bare spawns for the floor
    settle: float = 1.0  # seconds between start-up and the first memory reading
    warm_requests: int = 20  # GET /api/version on new connections, for the warm request's median

    @classmethod
    def quick(cls) -> Options:
        return cls(
            rounds=1,
            connections=(1, 8),
            duration=1,
            warmup=1,
            executes=10,
            spawns=30,
            settle=0.3,
            warm_requests=5,
        )


@contextmanager
def _running(server: Server) -> Iterator[float]:
    startup = server.start()
    try:
        yield startup
    finally:
        server.stop()


def _load(server: Server, options: Options, out: Metrics) -> None:
    url = server.url + LIST_PATH
    if options.warmup > 0:
        measure.wrk(url, server.key, max(options.connections), options.warmup)
    for c in options.connections:
        result = measure.wrk(url, server.key, c, options.duration)
        out[f"list_c{c}_rps"] = result["rps"]
        out[f"list_c{c}_p50_ms"] = result["p50_ms"]
        out[f"list_c{c}_p99_ms"] = result["p99_ms"]
        out[f"list_c{c}_errors"] = result["non2xx"] + result["socket_errors"]


def _percentiles(out: Metrics, name: str, timings: list[float]) -> None:
    out[f"{name}_p50_ms"] = measure.percentile(timings, 50)
    out[f"{name}_p99_ms"] = measure.percentile(timings, 99)


def _start_and_load(server: Server, options: Options, more: Callable[[Metrics], None]) -> Metrics:
    """Start-up, memory after it, the list load and `more`, then memory after the load."""
    out: Metrics = {}
    with _running(server) as startup:
        out["startup_s"] = startup
        time.sleep(options.settle)
        out["rss_start_mb"] = measure.rss_mb(server.pid)
        _load(server, options, out)
        more(out)
        out["rss_load_mb"] = measure.rss_mb(server.pid)
    return out


def measure_server(server: Server, options: Options) -> Metrics:
    """Start-up, memory, list load, sequential executes and a warm request of sysmenu or
    OctoPrint; for sysmenu also the socket-activated cold start and idle memory."""

    def executes(out: Metrics) -> None:
        for kind, path in (("sync", SYNC_PATH), ("async", ASYNC_PATH)):
            timings = measure.execute_latencies(server.url, server.key, path, options.executes)
            _percentiles(out, kind, timings)
        out["warm_request_ms"] = coldstart.warm_request_ms(server.url, server.key, options.warm_requests)

    out = _start_and_load(server, options, executes)
    if server.name == "sysmenu":
        out.update(coldstart.measure_activation(server, options.warm_requests, server.log.parent))
    return out


def measure_floor(server: Server, options: Options) -> Metrics:
    """The same load on the bare ASGI app, and the bare spawn as the floor of a sync execute."""
    out = _start_and_load(server, options, lambda out: None)
    _percentiles(out, "sync", measure.spawn_latencies(options.spawns))
    return out


def _machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def run(options: Options, workdir: Path | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Set up all three servers, measure them `options.rounds` times, return the results."""
    with tempfile.TemporaryDirectory(prefix="sysmenu-bench-") as tmp:
        base = workdir or Path(tmp)
        log("setting up sysmenu and OctoPrint")
        servers: dict[str, Server] = {
            "sysmenu": sysmenu_server(base / "sysmenu"),
            "octoprint": octoprint_server(base / "octoprint"),
        }
        # One unmeasured start each: first starts create files and caches.
        body = b"[]"
        for server in servers.values():
            with _running(server):
                if server.name == "sysmenu":
                    body = httpx.get(server.url + LIST_PATH, headers={"X-Api-Key": server.key}).content
        servers["floor"] = floor_server(base / "floor", body)
        rounds: list[dict[str, Metrics]] = []
        for i in range(options.rounds):
            order = SERVERS[i % len(SERVERS) :] + SERVERS[: i % len(SERVERS)]
            results: dict[str, Metrics] = {}
            for name in order:
                log(f"round {i + 1}/{options.rounds}: {name}")
                server = servers[name]
                try:
                    results[name] = (measure_floor if name == "floor" else measure_server)(server, options)
                except Exception as exc:
                    raise RuntimeError(f"{name}: {exc}\n--- its log:\n{server.tail()}") from exc
            rounds.append(results)
    medians = {
        name: {metric: measure.median([r[name][metric] for r in rounds]) for metric in rounds[0][name]}
        for name in SERVERS
    }
    return {
        "meta": {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "sysmenu": sysmenu_version,
            "octoprint": octoprint_ref.VERSION,
            "machine": _machine(),
            "options": asdict(options),
            "idle_exit": coldstart.IDLE_EXIT,
        },
        "rounds": rounds,
        "median": medians,
    }
