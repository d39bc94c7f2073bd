"""``GET /metrics``: Prometheus text, read by prometheus-client's own parser."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from sysmenu.metrics import Exposition, Histogram
from tests.conftest import Env

pytestmark = pytest.mark.anyio

LISTING = "/api/system/commands"


def families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(text: str, name: str) -> Iterator[Sample]:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                yield sample


def value(text: str, name: str, **labels: str) -> float:
    found = [s.value for s in samples(text, name) if s.labels == labels]
    assert len(found) == 1, (name, labels, [s for s in samples(text, name)])
    return found[0]


async def scrape(env: Env) -> str:
    r = await env.client.get("/metrics", headers=env.auth())
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return r.text


async def test_every_family_has_its_type_and_help(env: Env) -> None:
    text = await scrape(env)
    found = families(text)
    expected = {
        "sysmenu_info": "gauge",
        "sysmenu_runs_started": "counter",
        "sysmenu_runs_ended": "counter",
        "sysmenu_run_duration_seconds": "histogram",
        "sysmenu_http_requests": "counter",
        "sysmenu_auth_failures": "counter",
        "sysmenu_limiter_refusals": "counter",
        "sysmenu_runs_running": "gauge",
        "sysmenu_runs_queued": "gauge",
        "sysmenu_event_loop_lag_seconds": "gauge",
        "sysmenu_store_latency_seconds": "gauge",
        "sysmenu_store_writable": "gauge",
        "process_resident_memory_bytes": "gauge",
        "process_start_time_seconds": "gauge",
        "process_cpu_seconds": "counter",
    }
    for name, kind in expected.items():
        assert name in found, name
        assert found[name].type == kind, name
        assert found[name].documentation, name
    # Each family is declared once, before its samples (the parser merges, so count lines).
    declared = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert len(declared) == len(set(declared))
    assert value(text, "sysmenu_store_writable") == 1
    assert value(text, "process_resident_memory_bytes") > 1_000_000


async def test_runs_and_their_durations_are_counted(env: Env) -> None:
    for _ in range(2):
        assert (
            await env.client.post("/api/system/commands/custom/hello", headers=env.auth())
        ).status_code == 204
    assert (await env.client.post("/api/system/commands/custom/fail", headers=env.auth())).status_code == 500
    text = await scrape(env)
    assert value(text, "sysmenu_runs_started_total", source="custom", action="hello") == 2
    assert value(text, "sysmenu_runs_ended_total", source="custom", action="hello", state="ok") == 2
    assert value(text, "sysmenu_runs_ended_total", source="custom", action="fail", state="failed") == 1
    assert value(text, "sysmenu_run_duration_seconds_count", source="custom", action="hello") == 2
    assert value(text, "sysmenu_run_duration_seconds_sum", source="custom", action="hello") > 0
    buckets = [
        s for s in samples(text, "sysmenu_run_duration_seconds_bucket") if s.labels["action"] == "hello"
    ]
    bounds = [float(s.labels["le"]) for s in buckets]
    counts = [s.value for s in buckets]
    assert bounds == sorted(bounds) and math.isinf(bounds[-1])
    assert counts == sorted(counts) and counts[-1] == 2
    assert value(text, "sysmenu_runs_running") == 0


async def test_http_answers_by_route_template_and_status(env: Env) -> None:
    assert (await env.client.get(LISTING, headers=env.auth())).status_code == 200
    assert (await env.client.get(LISTING + "/core", headers=env.auth())).status_code == 200
    assert (await env.client.get("/api/runs/12345", headers=env.auth())).status_code == 404
    assert (await env.client.get("/api//runs/12346", headers=env.auth())).status_code == 404  # scope copied
    assert (await env.client.get("/no/such/thing")).status_code == 404
    assert (await env.client.get(LISTING)).status_code == 403
    text = await scrape(env)
    assert value(text, "sysmenu_http_requests_total", route=LISTING, status="200") == 1
    assert value(text, "sysmenu_http_requests_total", route=LISTING, status="403") == 1
    assert value(text, "sysmenu_http_requests_total", route=LISTING + "/{source}", status="200") == 1
    assert value(text, "sysmenu_http_requests_total", route="/api/runs/{run_id}", status="404") == 2
    assert value(text, "sysmenu_http_requests_total", route="unmatched", status="404") == 1


async def test_auth_failures_and_limiter_refusals(env: Env) -> None:
    attacker = {"X-Forwarded-For": "203.0.113.9", "X-Api-Key": "wrong"}
    codes = [(await env.client.get(LISTING, headers=attacker)).status_code for _ in range(12)]
    assert codes == [403] * 10 + [429] * 2
    text = await scrape(env)
    assert value(text, "sysmenu_auth_failures_total", kind="apikey") == 10
    assert value(text, "sysmenu_limiter_refusals_total", kind="apikey") == 2


async def test_metrics_need_a_key_with_system(env: Env) -> None:
    assert (await env.client.get("/metrics")).status_code == 403
    assert (await env.client.get("/metrics", headers=env.auth(env.user_key))).status_code == 403
    assert (await env.client.get("/metrics", headers=env.auth())).status_code == 200


@pytest.mark.config("sysmenu:\n  metrics_open: true\n")
async def test_metrics_open_needs_no_key(env: Env) -> None:
    r = await env.client.get("/metrics")
    assert r.status_code == 200
    assert "sysmenu_info" in families(r.text)


def test_label_values_and_help_are_escaped_for_the_parser() -> None:
    out = Exposition()
    tricky = 'a "quoted" back\\slash\nnew line'
    out.family("t", "counter", "help with \\ and\nnewline", [((("action", tricky),), 3)])
    hist = Histogram((1.0,))
    hist.observe(0.5)
    hist.observe(7.0)
    out.histogram("h_seconds", "a histogram", {(("action", tricky),): hist})
    text = out.text()
    parsed = families(text)
    assert parsed["t"].documentation == "help with \\ and\nnewline"
    assert parsed["t"].samples[0].labels == {"action": tricky}
    assert parsed["t"].samples[0].value == 3
    buckets = {s.labels["le"]: s.value for s in parsed["h_seconds"].samples if s.name == "h_seconds_bucket"}
    assert buckets == {"1.0": 1, "+Inf": 2}
    assert value(text, "h_seconds_sum", action=tricky) == 7.5
