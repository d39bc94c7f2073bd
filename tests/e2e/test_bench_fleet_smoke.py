"""`make bench-fleet`'s own code on two hosts and one repetition: the results' shape only
(no timing is judged here: the machine is shared)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import fleet
from tests.e2e.broker import need_mosquitto

pytestmark = pytest.mark.e2e


def test_two_hosts_one_repetition(tmp_path: Path) -> None:
    need_mosquitto()
    result = fleet.run_one(2, 1, log=lambda line: None)
    assert result["hosts"] == 2
    for key in ("fleet_p50_s", "fleet_p99_s", "http_sequential_p50_s", "cli_fleet_run_s"):
        assert 0 < result[key] < 60, key
    assert 0 < result["broker_rss_mb"] < result["host_rss_median_mb"] <= result["host_rss_max_mb"]
    text = fleet.markdown([result], "now")
    assert "| 2 |" in text and "Target" not in text  # the target is judged at 50 hosts
