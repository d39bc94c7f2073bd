"""``GET /metrics``: Prometheus' text exposition format (version 0.0.4), written by hand.

prometheus-client was measured first: importing it costs 1.2 MiB of resident
memory (355 modules instead of 326), against a budget of 35 MiB of which
sysmenu used 34.9. The format is a few lines of text, so it is written here and
tested against prometheus-client's own parser (a test dependency only).

Counters are fed through small hooks: the runner's observers (runs started and
ended), the failure limiters' observer (wrong keys and passwords, refusals) and
`HttpMetrics`, an ASGI layer counting answers by route and status. Gauges are
read when scraped. Counters start at zero with each server process, as
Prometheus expects of counters (``rate()`` handles the reset).
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import __version__

if TYPE_CHECKING:
    from .health import Health
    from .runner import Run, Runner

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Run durations: from a `true` (milliseconds) to a long backup (an hour).
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
UNMATCHED = "unmatched"  # the route label of requests no route matched (bounded cardinality)
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _sample(name: str, labels: Labels, value: float) -> str:
    if labels:
        inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
        return f"{name}{{{inner}}} {_number(value)}"
    return f"{name} {_number(value)}"


class Exposition:
    """Builds the text: each family's HELP and TYPE once, then its samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str, samples: Iterable[tuple[Labels, float]]) -> None:
        """HELP, TYPE and the samples of one family (a counter's name ends in ``_total``)."""
        if kind == "counter":
            name += "_total"
        self.lines.append(f"# HELP {name} {_escape_help(help_text)}")
        self.lines.append(f"# TYPE {name} {kind}")
        self.lines.extend(_sample(name, labels, value) for labels, value in samples)

    def histogram(self, name: str, help_text: str, histograms: dict[Labels, Histogram]) -> None:
        self.lines.append(f"# HELP {name} {_escape_help(help_text)}")
        self.lines.append(f"# TYPE {name} histogram")
        for labels, hist in sorted(histograms.items()):
            cumulative = 0
            for bound, count in zip((*hist.bounds, math.inf), hist.counts, strict=True):
                cumulative += count
                le = "+Inf" if math.isinf(bound) else repr(float(bound))  # "1.0", as prometheus-client writes
                self.lines.append(_sample(f"{name}_bucket", (*labels, ("le", le)), cumulative))
            self.lines.append(_sample(f"{name}_sum", labels, hist.total))
            self.lines.append(_sample(f"{name}_count", labels, cumulative))

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


class Histogram:
    """Counts per bucket (not cumulative; the exposition sums them) and the sum."""

    def __init__(self, bounds: tuple[float, ...] = DURATION_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        for index, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[index] += 1
                break
        else:
            self.counts[-1] += 1
        self.total += value


def _process_samples() -> dict[str, float]:
    """The standard ``process_*`` values, from /proc (Linux); empty elsewhere."""
    values: dict[str, float] = {}
    try:
        with open("/proc/self/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        values["process_cpu_seconds"] = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        values["process_virtual_memory_bytes"] = float(fields[20])
        values["process_resident_memory_bytes"] = float(int(fields[21]) * _PAGE_SIZE)
        values["process_open_fds"] = float(len(os.listdir("/proc/self/fd")))
    except (OSError, IndexError, ValueError):
        pass
    return values


class Metrics:
    """The counters of one server process, and the scrape."""

    def __init__(self) -> None:
        self.started = time.time()
        self.runs_started: Counter[Labels] = Counter()
        self.runs_ended: Counter[Labels] = Counter()
        self.run_durations: dict[Labels, Histogram] = {}
        self.http: dict[tuple[str, int], int] = {}  # (route, status): answers; labelled when scraped
        self.auth_failures: Counter[Labels] = Counter()
        self.limiter_refusals: Counter[Labels] = Counter()

    # -- hooks -----------------------------------------------------------------

    def run_started(self, run: Run) -> None:
        self.runs_started[(("source", run.spec.source), ("action", run.spec.action))] += 1

    def run_ended(self, run: Run) -> None:
        command = (("source", run.spec.source), ("action", run.spec.action))
        self.runs_ended[(*command, ("state", run.state))] += 1
        if run.duration is not None:
            self.run_durations.setdefault(command, Histogram()).observe(run.duration)

    def count(self, route: str, status: int) -> None:
        """One HTTP answer on `route` (a template) with `status`."""
        key = (route, status)
        self.http[key] = self.http.get(key, 0) + 1

    def limiter_observer(self, kind: str) -> Callable[[str], None]:
        """The observer for a failure limiter of `kind` (``apikey``, ``password``)."""
        label = (("kind", kind),)

        def observe(event: str) -> None:
            if event == "failure":
                self.auth_failures[label] += 1
            elif event == "refusal":
                self.limiter_refusals[label] += 1

        return observe

    # -- the scrape --------------------------------------------------------------

    def exposition(self, gauges: dict[str, tuple[str, float]]) -> str:
        """The text; `gauges` are the values read now: name -> (help, value)."""
        out = Exposition()
        out.family("sysmenu_info", "gauge", "sysmenu's version", [((("version", __version__),), 1)])
        out.family(
            "sysmenu_runs_started", "counter", "Runs started, by command", sorted(self.runs_started.items())
        )
        out.family(
            "sysmenu_runs_ended", "counter", "Runs ended, by command and how they ended",
            sorted(self.runs_ended.items()),
        )  # fmt: skip
        out.histogram("sysmenu_run_duration_seconds", "Run durations, by command", self.run_durations)
        http = sorted(
            ((("route", route), ("status", str(status))), n) for (route, status), n in self.http.items()
        )
        out.family("sysmenu_http_requests", "counter", "HTTP answers, by route and status", http)
        out.family(
            "sysmenu_auth_failures", "counter", "Wrong API keys (apikey) and wrong passwords (password)",
            sorted(self.auth_failures.items()),
        )  # fmt: skip
        out.family(
            "sysmenu_limiter_refusals", "counter", "Requests refused (429) after too many failures, by kind",
            sorted(self.limiter_refusals.items()),
        )  # fmt: skip
        for name, (help_text, value) in sorted(gauges.items()):
            out.family(name, "gauge", help_text, [((), value)])
        process = _process_samples()
        out.family(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process (Unix time)",
            [((), self.started)],
        )
        if "process_cpu_seconds" in process:
            cpu = process.pop("process_cpu_seconds")
            out.family("process_cpu_seconds", "counter", "User and system CPU time (seconds)", [((), cpu)])
        for name, value in sorted(process.items()):
            out.family(
                name, "gauge", name.removeprefix("process_").replace("_", " ").capitalize(), [((), value)]
            )
        return out.text()


class HttpMetrics:
    """Counts every answer by route template (``/api/runs/{run_id:int}``) and status.

    Right inside the fast path (which counts its own answers), so that the guard's
    refusals are counted too. The route is read from the scope Starlette's router
    fills in; a layer that copies the scope (the guard, for ``//`` and proxy
    prefixes) hands it back through a shared one-item list (see `RouteProbe`).
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets when the app fails before answering
        box: list[Any] = []
        scope["sysmenu.route"] = box

        async def counting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counting)
        finally:
            route = scope.get("route") or (box[0] if box else None)
            self.metrics.count(UNMATCHED if route is None else route.path, status)


class RouteProbe:
    """The innermost layer: hands the matched route to `HttpMetrics` when a layer
    between them copied the scope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            box = scope.get("sysmenu.route")
            if box is not None and "route" in scope and not box:
                box.append(scope["route"])


class MetricsView:
    """``GET /metrics``: `authorize` raises for a caller that may not read them."""

    def __init__(
        self,
        metrics: Metrics,
        runner: Runner,
        health: Health,
        authorize: Callable[[Request], Awaitable[object]],
    ) -> None:
        self.metrics = metrics
        self.runner = runner
        self.health = health
        self.authorize = authorize

    async def gauges(self) -> dict[str, tuple[str, float]]:
        started = time.perf_counter()
        problem = await self.health.store_problem()
        latency = time.perf_counter() - started
        return {
            "sysmenu_runs_running": ("Runs running now", len(self.runner.running)),
            "sysmenu_runs_queued": ("Runs waiting for a free slot of their command", self.runner.queued),
            "sysmenu_event_loop_lag_seconds": (
                "How late the event loop last ran a timer",
                self.health.monitor.lag,
            ),
            "sysmenu_store_latency_seconds": (
                "Time to take and release the store's write lock, measured at this scrape",
                latency,
            ),
            "sysmenu_store_writable": ("1 when the store can take a write", 0 if problem else 1),
        }

    async def view(self, request: Request) -> Response:
        await self.authorize(request)
        text = self.metrics.exposition(await self.gauges())
        return Response(text, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})
