"""The leaks around the server (issue 17): long ids, file modes, the commands'
environment, streams outliving credentials, DNS rebinding, keys echoed or missed in
query strings, cacheable answers, typed names in the audit, limits that reloads
cleared or proxies' ports evaded. Against a real server on 127.0.0.1."""

from __future__ import annotations

import socket
import sqlite3
import stat
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import SYSMENU, Server, running_server, sysmenu

pytestmark = pytest.mark.e2e

CONFIG = """\
system:
  actions:
    - action: hello
      command: "echo hello"
"""


def raw(server: Server, head: str) -> bytes:
    """One request as written, on its own connection; the whole answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head.encode())
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


@pytest.mark.parametrize("suffix", ["", "/events", "/kill"])
def test_very_long_run_ids_are_404_without_tracebacks(tmp_path: Path, suffix: str) -> None:
    with running_server(tmp_path, CONFIG) as server, server.client() as client:
        path = "/api/runs/" + "9" * 5000 + suffix
        for id_ in ("9" * 5000, "1e3", "-1", "٣", "0x10", "9" * 20):
            path = f"/api/runs/{id_}{suffix}"
            r = client.post(path) if suffix == "/kill" else client.get(path)
            assert r.status_code == 404, (id_, r.status_code)
            assert "error" in r.json()
        assert "Traceback" not in server.output()


def test_data_directory_and_database_are_private_whatever_the_umask(tmp_path: Path) -> None:
    """Created 0644 in a 0755 directory under umask 022; an existing readable directory
    is made private, with a warning."""
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    port = str(_free_port())
    log = tmp_path / "log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                "sh",
                "-c",
                f'umask 022; exec "$0" --data-dir {data} --config {config} serve --port {port}',
                SYSMENU,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        credentials = data / "first-start-credentials.txt"
        deadline = time.monotonic() + 20
        while not credentials.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        key = credentials.read_text().split("API key:")[1].split()[0]
        httpx.post(f"http://127.0.0.1:{port}/api/system/commands/custom/hello", headers={"X-Api-Key": key})
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        for name in ("sysmenu.db", "sysmenu.db-wal", "sysmenu.db-shm", credentials.name):
            assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
        assert "data directory" in log.read_text() and "0755" in log.read_text()
    finally:
        process.terminate()
        process.wait(10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


ENV_CONFIG = """\
server:
  commands:
    serverRestartCommand: "env > {tmp}/core-env"
sysmenu:
  environment:
    TZ: Europe/Berlin
    SHARED: from-global
system:
  actions:
    - action: env
      command: env
      environment:
        SHARED: from-action
        BACKUP_TARGET: /mnt/usb
"""


def test_commands_get_a_minimal_environment_without_the_servers_secrets(tmp_path: Path) -> None:
    secrets = {"SYSMENU_API_KEY": "secret-key-123", "AWS_SECRET_ACCESS_KEY": "secret-456"}
    config = ENV_CONFIG.format(tmp=tmp_path)
    with running_server(tmp_path, config, env=secrets) as server, server.client() as client:
        assert client.post("/api/system/commands/custom/env").status_code == 204
        (run,) = client.get("/api/runs").json()["runs"]
        output = client.get(f"/api/runs/{run['id']}").json()["stdout"]
        assert client.post("/api/system/commands/core/restart").status_code == 204
    env = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)
    assert "secret" not in output
    # Of sysmenu's own names only the run's tag (docs/reliability.md), never the server's settings or key
    assert [name for name in env if name.startswith("SYSMENU_")] == ["SYSMENU_RUN"]
    assert env["SYSMENU_RUN"].startswith(f"{run['id']}@")
    assert (
        env["SHARED"] == "from-action" and env["TZ"] == "Europe/Berlin" and env["BACKUP_TARGET"] == "/mnt/usb"
    )
    assert {"PATH", "LANG", "HOME"} <= set(env)
    allowed = {"PATH", "LANG", "HOME", "USER", "LOGNAME", "TZ", "SHARED", "BACKUP_TARGET", "SYSMENU_RUN"}
    allowed |= {"PWD", "SHLVL", "_", "OLDPWD"}  # what the shell itself sets
    assert set(env) <= allowed, set(env) - allowed
    deadline = time.monotonic() + 10
    while not (tmp_path / "core-env").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    core = (tmp_path / "core-env").read_text()
    assert "TZ=Europe/Berlin" in core and "SHARED=from-global" in core and "secret" not in core


STREAM_CONFIG = """\
system:
  actions:
    - action: talk
      command: "for i in $(seq 300); do echo $i; sleep 0.1; done"
      async: true
"""


@pytest.mark.parametrize("how", ["user remove", "key revoke"])
def test_event_stream_ends_when_its_credential_stops_being_valid(tmp_path: Path, how: str) -> None:
    with running_server(tmp_path, STREAM_CONFIG) as server:
        sysmenu(
            "user",
            "add",
            "watcher",
            "--group",
            "admins",
            "--password",
            "watcher-pw",
            data_dir=server.data_dir,
        )
        key = sysmenu("key", "create", "watcher", data_dir=server.data_dir).strip()
        with server.client() as client:
            assert client.post("/api/system/commands/custom/talk").status_code == 204
            (run,) = client.get("/api/runs").json()["runs"]
        started = threading.Event()
        ended: list[float] = []

        def watch() -> None:
            url = f"{server.url}/api/runs/{run['id']}/events"
            with httpx.stream("GET", url, headers={"X-Api-Key": key}, timeout=40) as r:
                for line in r.iter_lines():
                    if line.startswith("event: output"):
                        started.set()
            ended.append(time.monotonic())

        watcher = threading.Thread(target=watch)
        watcher.start()
        assert started.wait(10)
        if how == "user remove":
            sysmenu("user", "remove", "watcher", data_dir=server.data_dir)
        else:
            sysmenu("key", "revoke", key[:8], data_dir=server.data_dir)
        removed = time.monotonic()
        watcher.join(20)
        assert ended, "the stream went on after its credential was gone"
        assert ended[0] - removed < 8
        with server.client() as client:  # the command (30 s) was still running: the stream was cut
            assert client.get(f"/api/runs/{run['id']}").json()["state"] == "running"


def host_answer(server: Server, host: str, path: str = "/api/system/commands", method: str = "GET") -> bytes:
    return raw(
        server,
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nX-Api-Key: {server.key}\r\nConnection: close\r\n\r\n",
    )


def test_dns_rebinding_hosts_are_refused_on_loopback(tmp_path: Path) -> None:
    """A page that rebinds its name to 127.0.0.1 sends its own name as Host."""
    with running_server(tmp_path, CONFIG + "sysmenu:\n  allowed_hosts: [octopi.local]\n") as server:
        for host in ("evil.example", "evil.example:5000", "127.0.0.1.evil.example", "localhost.evil.example"):
            for method, path in (
                ("GET", "/api/system/commands"),
                ("POST", "/api/system/commands/custom/hello"),
            ):
                answer = host_answer(server, host, path, method)
                assert answer.startswith(b"HTTP/1.1 400"), (host, answer[:100])
                assert b"sysmenu.allowed_hosts" in answer
        for host in (
            "localhost",
            f"localhost:{server.port}",
            "127.0.0.1",
            f"[::1]:{server.port}",
            "octopi.local",
        ):
            assert host_answer(server, host).startswith(b"HTTP/1.1 200"), host
        with server.client() as client:
            assert client.get("/api/runs").json()["runs"] == []  # the refused POSTs ran nothing


def test_query_parameter_names_are_decoded_and_no_key_is_echoed(tmp_path: Path) -> None:
    with running_server(tmp_path, CONFIG) as server:
        r = httpx.get(f"{server.url}/api/system/commands?api%6Bey={server.key}")
        assert r.status_code == 200
        with server.client() as client:
            for _ in range(2):
                assert client.post("/api/system/commands/custom/hello").status_code == 204
        r = httpx.get(f"{server.url}/api/runs", params={"limit": 1, "apikey": server.key})
        assert r.status_code == 200
        assert server.key not in r.text and "apikey" not in r.json()["next"]
        r = httpx.get(r.json()["next"], headers={"X-Api-Key": server.key})
        assert r.status_code == 200 and len(r.json()["runs"]) == 1


def test_api_answers_are_not_stored_or_sniffed(tmp_path: Path) -> None:
    with running_server(tmp_path, CONFIG) as server, server.client() as client:
        assert client.post("/api/system/commands/custom/hello").status_code == 204
        answers = [
            client.get("/api/system/commands"),  # the fast path
            client.get("/api/system/commands/custom"),
            client.get("/api/runs/1"),
            client.get("/api/runs"),
            client.get("/api/currentuser"),
            client.get("/api/version"),
            client.get("/api/runs/12345"),  # an error
            httpx.get(f"{server.url}/api/system/commands"),  # a refusal
        ]
        for r in answers:
            assert r.headers["cache-control"] == "no-store", r.url
            assert r.headers["x-content-type-options"] == "nosniff", r.url


def test_failed_logins_record_only_names_of_users(tmp_path: Path) -> None:
    with running_server(tmp_path, CONFIG) as server:
        for name in ("correct horse battery", "admin"):
            r = httpx.post(f"{server.url}/api/login", json={"user": name, "pass": "wrong"})
            assert r.status_code == 403
        with sqlite3.connect(server.data_dir / "sysmenu.db") as db:
            users = [row[0] for row in db.execute("SELECT user FROM audit WHERE event='login_failed'")]
    assert users == ["(unknown user)", "admin"]


LIMIT_CONFIG = CONFIG + "sysmenu:\n  key_failure_limit: 3\n  reload_interval: 0.2\n"


def test_a_config_reload_keeps_the_lockouts(tmp_path: Path) -> None:
    with running_server(tmp_path, LIMIT_CONFIG) as server:
        wrong = {"X-Api-Key": "guess"}
        codes = [httpx.get(f"{server.url}/api/runs", headers=wrong).status_code for _ in range(4)]
        assert codes == [403, 403, 403, 429]
        with server.client() as client:
            loaded = client.get("/api/status").json()["config"]["loaded"]
            server.config.write_text(LIMIT_CONFIG.replace("echo hello", "echo changed"))
            deadline = time.monotonic() + 10
            while (
                client.get("/api/status").json()["config"]["loaded"] == loaded and time.monotonic() < deadline
            ):
                time.sleep(0.1)
            assert client.get("/api/status").json()["config"]["loaded"] != loaded
        assert httpx.get(f"{server.url}/api/runs", headers=wrong).status_code == 429


def test_forwarded_for_entries_with_ports_count_as_one_address(tmp_path: Path) -> None:
    with running_server(tmp_path, LIMIT_CONFIG) as server:
        codes = [
            httpx.get(
                f"{server.url}/api/runs",
                headers={"X-Api-Key": "guess", "X-Forwarded-For": f"203.0.113.9:{40000 + i}"},
            ).status_code
            for i in range(4)
        ]
        assert codes == [403, 403, 403, 429]
        r = httpx.get(
            f"{server.url}/api/runs", headers={"X-Api-Key": "guess", "X-Forwarded-For": "[2001:db8::1]:1"}
        )
        assert r.status_code == 403  # another address


def test_a_valid_credential_is_never_refused_for_someone_elses_failures(tmp_path: Path) -> None:
    with running_server(tmp_path, LIMIT_CONFIG) as server:
        shared = {"X-Forwarded-For": "203.0.113.20"}  # one NAT, an attacker and the admin behind it
        for _ in range(4):
            httpx.get(f"{server.url}/api/runs", headers=shared | {"X-Api-Key": "guess"})
        assert httpx.get(f"{server.url}/api/runs", headers=shared | {"X-Api-Key": "guess"}).status_code == 429
        assert (
            httpx.get(f"{server.url}/api/runs", headers=shared | {"X-Api-Key": server.key}).status_code == 200
        )
        for _ in range(5):
            httpx.post(f"{server.url}/api/login", json={"user": "admin", "pass": "guess"}, headers=shared)
        right = {"user": "admin", "pass": "admin-pw"}
        assert httpx.post(f"{server.url}/api/login", json=right, headers=shared).status_code == 429
        elsewhere = {"X-Forwarded-For": "198.51.100.20"}
        assert httpx.post(f"{server.url}/api/login", json=right, headers=elsewhere).status_code == 200
