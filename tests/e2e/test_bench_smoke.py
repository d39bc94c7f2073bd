"""`make bench`'s own code, one short round against both servers: the results' shape only.

No timing is judged here (the machine is shared); the first run installs OctoPrint
into the bench's cache venv, which takes a minute or two.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmarks import report
from benchmarks.run import SERVERS, Options, run

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (scripts/test installs it)"),
]


def test_one_quick_round_measures_both_servers_and_the_floors(tmp_path: Path) -> None:
    options = Options.quick()
    result = run(options, tmp_path / "work", log=lambda line: None)

    assert len(result["rounds"]) == 1
    assert set(result["median"]) == set(SERVERS)
    listing = [f"list_c{c}_{m}" for c in options.connections for m in ("rps", "p50_ms", "p99_ms")]
    common = ["startup_s", "rss_start_mb", "rss_load_mb", *listing]
    for name in ("sysmenu", "octoprint"):
        metrics = result["median"][name]
        for metric in [
            *common,
            "sync_p50_ms",
            "sync_p99_ms",
            "async_p50_ms",
            "async_p99_ms",
            "warm_request_ms",
        ]:
            assert metrics[metric] > 0, (name, metric)
        for c in options.connections:
            assert metrics[f"list_c{c}_errors"] == 0, (name, c)
    activated = result["median"]["sysmenu"]
    assert activated["cold_start_s"] > 0 and activated["warm_activated_ms"] > 0
    assert activated["rss_idle_mb"] == 0  # no sysmenu process once it exited when idle
    floor = result["median"]["floor"]
    for metric in [*common, "sync_p50_ms", "sync_p99_ms"]:
        assert floor[metric] > 0, ("floor", metric)

    paths = report.write(result, tmp_path / "results")
    text = paths["md"].read_text()
    assert "| measure | sysmenu | OctoPrint 1.11.8 |" in text
    for row in ("start-up", "RSS after start-up", "RSS after load", "POST sync `true`, p50"):
        assert f"| {row}" in text
    for c in options.connections:
        assert f"| GET /api/system/commands, {c} conn., throughput (req/s) |" in text
    assert "| socket activation | sysmenu | OctoPrint 1.11.8 |" in text
    assert "| first request after an idle exit" in text
    assert len(report.targets(result)) == 7
    assert (tmp_path / "results" / "latest.json").exists()
