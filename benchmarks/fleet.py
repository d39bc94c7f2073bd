"""The fleet benchmark: N real sysmenu processes on one Mosquitto, `true` run on all of them.

``python -m benchmarks fleet`` (``make bench-fleet``): starts Debian's mosquitto on a
loopback port and N ``sysmenu serve`` processes joined to it, then, in repetitions,

- runs ``custom:true`` on every host through the broker, with the code ``sysmenu fleet
  run --all`` uses (one v5 request per host, answers by correlation data), and times
  from the first request to the last answer;
- runs it on every host through N sequential HTTP calls (a new connection each, as a
  script looping over hosts does), and times the loop;

and reads the broker's and the hosts' resident memory. One real ``sysmenu fleet run``
is timed too (its own start-up and host discovery included). Results go to
``benchmarks/results/fleet.md`` and ``fleet.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from sysmenu import fleet
from sysmenu.mqtt_settings import MqttSettings

from . import measure
from .servers import SYSMENU, Server, free_port

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_HOSTS, TARGET_SECONDS = 50, 1.0
ROOT = "bench"
CONFIG = """\
system:
  actions:
    - action: "true"
      name: "True"
      command: "true"
      mqtt: true
sysmenu:
  reload_interval: 0
  mqtt:
    host: 127.0.0.1
    port: {port}
    topic_prefix: {root}/{name}
    discovery: false
"""


@contextmanager
def mosquitto(workdir: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    conf = workdir / "mosquitto.conf"
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        "persistence false",
        "set_tcp_nodelay true",
    ]
    if os.getuid() == 0:
        lines.append("user root")
    conf.write_text("\n".join(lines) + "\n")
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with (workdir / "mosquitto.log").open("ab") as log:
        process = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("mosquitto did not start") from None
                time.sleep(0.02)
        yield port, process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)


def _template(workdir: Path) -> tuple[Path, str]:
    """One data dir with a user and a key, made by sysmenu's CLI; every host gets a copy."""
    data = workdir / "template"
    base = [str(SYSMENU), "--data-dir", str(data)]
    subprocess.run([*base, "user", "add", "bench", "--group", "admins", "--password", "-"],
                   check=True, capture_output=True, input=b"")  # fmt: skip
    key = subprocess.run([*base, "key", "create", "bench"], check=True, capture_output=True, text=True)
    return data, key.stdout.strip()


def _hosts(workdir: Path, count: int, broker_port: int, stack: ExitStack) -> list[Server]:
    template, key = _template(workdir)
    servers = []
    for i in range(count):
        name = f"host-{i:02d}"
        home = workdir / name
        shutil.copytree(template, home / "data")
        config = home / "config.yaml"
        config.write_text(CONFIG.format(port=broker_port, root=ROOT, name=name))
        port = free_port()
        argv = [str(SYSMENU), "--data-dir", str(home / "data"), "--config", str(config),
                "serve", "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
        server = Server(name, argv, key, port, home / "server.log")
        server.start()
        stack.callback(server.stop)
        servers.append(server)
    return servers


async def _all_online(settings: MqttSettings, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with fleet.client(settings) as mqtt:
            hosts = await fleet.find_hosts(mqtt, ROOT, fleet.DEFAULT_SENDER)
        if sum(h.online for h in hosts.values()) >= count:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"not all {count} hosts came online on the broker")


async def _fleet_rounds(settings: MqttSettings, repetitions: int) -> list[float]:
    """Seconds from the first request to the last answer, per repetition (one connection)."""
    timings = []
    async with fleet.client(settings) as mqtt:
        hosts = fleet.select(await fleet.find_hosts(mqtt, ROOT, fleet.DEFAULT_SENDER), None)
        for _ in range(repetitions + 1):  # the first one warms up
            started = time.perf_counter()
            outcomes = await fleet.run_on(mqtt, ROOT, fleet.DEFAULT_SENDER, hosts, "custom", "true", 30)
            timings.append(time.perf_counter() - started)
            bad = [o for o in outcomes if o.state != "ok"]
            if bad:
                raise RuntimeError(f"fleet run failed on {len(bad)} host(s): {bad[:3]}")
    return timings[1:]


def _http_rounds(servers: list[Server], repetitions: int) -> list[float]:
    timings = []
    for _ in range(repetitions + 1):
        # one client (its set-up is not what is measured), a new connection per host
        with httpx.Client(timeout=30) as client:
            started = time.perf_counter()
            for server in servers:
                r = client.post(
                    f"{server.url}/api/system/commands/custom/true", headers={"X-Api-Key": server.key}
                )
                if r.status_code != 204:
                    raise RuntimeError(f"{server.name}: {r.status_code} {r.text[:200]}")
            timings.append(time.perf_counter() - started)
    return timings[1:]


def _cli_once(workdir: Path, broker_port: int) -> float:
    config = workdir / "controller.yaml"
    config.write_text(f"sysmenu:\n  mqtt:\n    host: 127.0.0.1\n    port: {broker_port}\n"
                      f"    topic_prefix: {ROOT}/controller\n")  # fmt: skip
    started = time.perf_counter()
    subprocess.run([str(SYSMENU), "--config", str(config), "--data-dir", str(workdir / "controller"),
                    "fleet", "run", "custom", "true", "--all", "--json"],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    return time.perf_counter() - started


def run_one(count: int, repetitions: int, log: Any = print) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sysmenu-fleet-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        broker_port, broker = stack.enter_context(mosquitto(workdir))
        log(f"starting {count} sysmenu hosts on mosquitto :{broker_port}...")
        servers = _hosts(workdir, count, broker_port, stack)
        settings = MqttSettings("127.0.0.1", port=broker_port, topic_prefix=f"{ROOT}/controller")
        asyncio.run(_all_online(settings, count))
        fleet_s = asyncio.run(_fleet_rounds(settings, repetitions))
        http_s = _http_rounds(servers, repetitions)
        cli_s = _cli_once(workdir, broker_port)
        host_rss = [measure.rss_mb(s.pid, settle=0.5) for s in servers]
        result = {
            "hosts": count,
            "repetitions": repetitions,
            "fleet_p50_s": measure.percentile(fleet_s, 50),
            "fleet_p99_s": measure.percentile(fleet_s, 99),
            "http_sequential_p50_s": measure.percentile(http_s, 50),
            "http_sequential_p99_s": measure.percentile(http_s, 99),
            "cli_fleet_run_s": cli_s,
            "broker_rss_mb": measure.rss_mb(broker.pid, settle=0),
            "host_rss_median_mb": measure.median(host_rss),
            "host_rss_max_mb": max(host_rss),
        }
        log(json.dumps(result))
        return result


def markdown(results: list[dict[str, Any]], when: str) -> str:
    lines = [
        f"Measured {when} with `make bench-fleet`: N `sysmenu serve` processes on one Mosquitto "
        "(loopback), `custom:true` on all of them. Fleet: one MQTT v5 request per host, time from the "
        "first request to the last answer (the code of `sysmenu fleet run`). HTTP: one POST per host, "
        "one after another. `sysmenu fleet run --all` once, with its own start-up and host discovery.",
        "",
        "| hosts | fleet p50 (s) | fleet p99 (s) | N sequential HTTP p50 (s) | p99 (s) "
        "| `sysmenu fleet run` (s) | broker RSS (MiB) | host RSS median / max (MiB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['hosts']} | {r['fleet_p50_s']:.3f} | {r['fleet_p99_s']:.3f} | "
            f"{r['http_sequential_p50_s']:.3f} | {r['http_sequential_p99_s']:.3f} | "
            f"{r['cli_fleet_run_s']:.2f} | "
            f"{r['broker_rss_mb']:.1f} | {r['host_rss_median_mb']:.1f} / {r['host_rss_max_mb']:.1f} |"
        )
    big = [r for r in results if r["hosts"] >= TARGET_HOSTS]
    if big:
        met = all(r["fleet_p99_s"] < TARGET_SECONDS for r in big)
        lines += ["", f"Target: {TARGET_HOSTS} hosts answered within {TARGET_SECONDS:g} s (p99): "
                  f"{'met' if met else 'not met'}."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks fleet", description=__doc__)
    parser.add_argument("--hosts", default="20,50", help="host counts, comma-separated (default 20,50)")
    parser.add_argument("--repetitions", type=int, default=20, help="timed fleet runs per count (default 20)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where fleet.md and fleet.json go")
    args = parser.parse_args(argv)
    results = [run_one(int(n), max(1, args.repetitions)) for n in args.hosts.split(",")]
    when = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    text = markdown(results, when)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fleet.md").write_text(text)
    (args.out / "fleet.json").write_text(json.dumps({"when": when, "results": results}, indent=2) + "\n")
    print(text)
    return 0
