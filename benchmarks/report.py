"""The report: a Markdown table, the JSON of the run, a PNG plot, and the targets."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
README = Path(__file__).resolve().parent.parent / "README.md"
MARK_BEGIN = "<!-- bench:begin -->"
MARK_END = "<!-- bench:end -->"

# (metric, label, unit, higher is better)
_FIXED_ROWS = [
    ("startup_s", "start-up (to first 200 of GET /api/version)", "s", False),
    ("rss_start_mb", "RSS after start-up", "MiB", False),
    ("rss_load_mb", "RSS after load", "MiB", False),
]
_EXEC_ROWS = [
    ("sync_p50_ms", "POST sync `true`, p50 (floor: bare spawn)", "ms", False),
    ("sync_p99_ms", "POST sync `true`, p99 (floor: bare spawn)", "ms", False),
    ("async_p50_ms", "POST async `true`, p50", "ms", False),
    ("async_p99_ms", "POST async `true`, p99", "ms", False),
]


# Socket activation (sysmenu only): each row's sysmenu metric and what OctoPrint, which
# always runs, sets against it.
_ACTIVATION_ROWS = [
    ("rss_idle_mb", "rss_start_mb", "memory while idle (sysmenu: socket-activated, after its idle exit; "
     "OctoPrint: after start-up, as it always runs)", "MiB"),
    ("cold_start_s", "startup_s", "first request after an idle exit, a cold start through the socket "
     "(OctoPrint: its start-up)", "s"),
    ("warm_activated_ms", "warm_request_ms", "warm request: GET /api/version on a new connection "
     "(sysmenu: socket-activated)", "ms"),
]  # fmt: skip


def rows(connections: list[int]) -> list[tuple[str, str, str, bool]]:
    listing: list[tuple[str, str, str, bool]] = []
    for c in connections:
        listing += [
            (f"list_c{c}_rps", f"GET /api/system/commands, {c} conn., throughput", "req/s", True),
            (f"list_c{c}_p50_ms", f"GET /api/system/commands, {c} conn., p50", "ms", False),
            (f"list_c{c}_p99_ms", f"GET /api/system/commands, {c} conn., p99", "ms", False),
        ]
    return _FIXED_ROWS + listing + _EXEC_ROWS


def _num(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}×"


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, measured; reported, never asserted."""
    med = result["median"]
    s, o, f = med["sysmenu"], med["octoprint"], med["floor"]
    connections = result["meta"]["options"]["connections"]
    vs_octo = min(s[f"list_c{c}_rps"] / o[f"list_c{c}_rps"] for c in connections)
    vs_floor = min(s[f"list_c{c}_rps"] / f[f"list_c{c}_rps"] for c in connections)
    sync_gap = s["sync_p50_ms"] - f["sync_p50_ms"]
    return [
        {"target": "list throughput ≥ 15× OctoPrint (lowest over conn. counts)", "value": f"{vs_octo:.1f}×",
         "met": vs_octo >= 15},
        {"target": "list throughput ≥ 60% of the bare ASGI floor (lowest)", "value": f"{vs_floor:.0%}",
         "met": vs_floor >= 0.6},
        {"target": "sync `true` p50 within 2 ms of the bare spawn", "value": f"+{sync_gap:.2f} ms",
         "met": sync_gap <= 2},
        {"target": "start-up < 0.3 s", "value": f"{s['startup_s']:.3f} s", "met": s["startup_s"] < 0.3},
        {"target": "RSS after start-up < 35 MiB", "value": f"{s['rss_start_mb']:.1f} MiB",
         "met": s["rss_start_mb"] < 35},
        {"target": "RSS after load < 40 MiB", "value": f"{s['rss_load_mb']:.1f} MiB",
         "met": s["rss_load_mb"] < 40},
        {"target": "memory while idle under socket activation = 0", "value": f"{s['rss_idle_mb']:.1f} MiB",
         "met": s["rss_idle_mb"] == 0},
    ]  # fmt: skip


def table(result: dict[str, Any]) -> str:
    med = result["median"]
    s, o, f = med["sysmenu"], med["octoprint"], med["floor"]
    lines = [
        "| measure | sysmenu | OctoPrint 1.11.8 | sysmenu / OctoPrint | floor | sysmenu / floor |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for metric, label, unit, _ in rows(result["meta"]["options"]["connections"]):
        sv, ov, fv = s.get(metric), o.get(metric), f.get(metric)
        cells = [_num(sv), _num(ov), _ratio(sv, ov), _num(fv), _ratio(sv, fv)]
        lines.append(f"| {label} ({unit}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def activation_table(result: dict[str, Any]) -> str:
    """Socket activation: sysmenu's idle memory, cold start and warm request against OctoPrint."""
    s, o = result["median"]["sysmenu"], result["median"]["octoprint"]
    lines = ["| socket activation | sysmenu | OctoPrint 1.11.8 |", "|---|---:|---:|"]
    for ours, theirs, label, unit in _ACTIVATION_ROWS:
        lines.append(f"| {label} ({unit}) | {_num(s.get(ours))} | {_num(o.get(theirs))} |")
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    meta = result["meta"]
    opts = meta["options"]
    machine = meta["machine"]
    idle_exit = meta.get("idle_exit", 0)
    errors = [
        f"{name} {metric.split('_')[1]}: {value:.0f}"
        for name, metrics in result["median"].items()
        for metric, value in metrics.items()
        if metric.endswith("_errors") and value
    ]
    parts = [
        f"Measured {meta['date']} with `make bench` "
        f"(sysmenu {meta['sysmenu']}, OctoPrint {meta['octoprint']}; "
        f"{machine['cpus']} CPUs, {machine['cpu'] or 'unknown CPU'}, Python {machine['python']}). "
        f"Medians of {opts['rounds']} alternating round(s); wrk with 1 thread, {opts['duration']:g} s per "
        f"connection count; {opts['executes']} sequential POSTs per command over one keep-alive connection. "
        "Floors: a bare ASGI app under uvicorn with sysmenu's settings (for start-up, memory and the "
        'list load) and a bare `subprocess.run(["/bin/sh", "-c", "true"])` (for the sync execute). '
        "Socket activation: systemd-socket-activate on a socket held open across restarts, as systemd "
        f"holds it, and sysmenu with a {idle_exit:g} s idle exit.",
        "",
        table(result),
        "",
        activation_table(result),
        "",
        "| target | measured | met |",
        "|---|---:|:---:|",
        *(f"| {t['target']} | {t['value']} | {'yes' if t['met'] else 'no'} |" for t in targets(result)),
    ]
    if errors:
        parts += ["", "Non-2xx answers or socket errors under load (median count): " + ", ".join(errors)]
    return "\n".join(parts) + "\n"


def plot(result: dict[str, Any], path: Path) -> bool:
    """Throughput and p99 against connection count; False when matplotlib is not installed."""
    try:
        matplotlib: Any = importlib.import_module("matplotlib")
    except ImportError:
        return False
    matplotlib.use("Agg")
    plt: Any = importlib.import_module("matplotlib.pyplot")
    connections = result["meta"]["options"]["connections"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    labels = {"sysmenu": "sysmenu", "octoprint": "OctoPrint 1.11.8", "floor": "bare ASGI floor"}
    styles = {"sysmenu": "o-", "octoprint": "s-", "floor": "^--"}
    for name, label in labels.items():
        metrics = result["median"][name]
        left.plot(connections, [metrics[f"list_c{c}_rps"] for c in connections], styles[name], label=label)
        right.plot(
            connections, [metrics[f"list_c{c}_p99_ms"] for c in connections], styles[name], label=label
        )
    for axis, title, unit in ((left, "throughput", "requests/s"), (right, "p99 latency", "ms")):
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xticks(connections, [str(c) for c in connections])
        axis.set_xlabel("connections (wrk)")
        axis.set_ylabel(unit)
        axis.set_title(f"GET /api/system/commands: {title}")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write(result: dict[str, Any], outdir: Path = RESULTS, readme: Path | None = None) -> dict[str, Path]:
    """Write latest.json, latest.md and latest.png to `outdir`; refresh `readme`'s table."""
    outdir.mkdir(parents=True, exist_ok=True)
    result = dict(result, targets=targets(result))
    paths = {"json": outdir / "latest.json", "md": outdir / "latest.md"}
    paths["json"].write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    text = markdown(result)
    paths["md"].write_text("# sysmenu benchmark: latest run\n\n" + text)
    png = outdir / "latest.png"
    if plot(result, png):
        paths["png"] = png
    if readme is not None:
        update_readme(readme, text)
    return paths


def update_readme(readme: Path, text: str) -> None:
    """Replace what stands between the bench markers in the README with `text`."""
    content = readme.read_text()
    start, end = content.find(MARK_BEGIN), content.find(MARK_END)
    if start < 0 or end < start:
        return
    content = content[: start + len(MARK_BEGIN)] + "\n" + text + content[end:]
    readme.write_text(content)
