"""sysmenu.mqtt over TLS against a real Mosquitto: the broker checked against a CA file,
a client certificate, and a broker the system's CAs do not vouch for refused."""

from __future__ import annotations

import gc
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from tests.e2e.broker import Broker, mosquitto
from tests.e2e.mqtt_helpers import retained, running_app, watcher

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def certificates(directory: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all made by it."""
    directory.mkdir(parents=True, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "1", "-subj", "/CN=sysmenu test CA", cwd=directory)  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, extra in (("server", ["-extfile", "san.ext"]), ("client", [])):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN=pi-1-{name}", cwd=directory)  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.crt", "-days", "1", *extra, cwd=directory)  # fmt: skip
    return directory


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    return certificates(tmp_path / "certs")


@pytest.fixture
def broker(tmp_path: Path, certs: Path) -> Iterator[Broker]:
    extra = (
        f"cafile {certs}/ca.crt\ncertfile {certs}/server.crt\nkeyfile {certs}/server.key\n"
        "require_certificate true\n"
    )
    with mosquitto(tmp_path / "broker", extra) as b:
        yield b


def config(broker: Broker, **keys: object) -> str:
    return (
        "system:\n  actions:\n    - {action: a, command: 'true', mqtt: true}\n"
        f"sysmenu:\n{broker.mqtt_section(topic_prefix='sysmenu/pi-1', **keys)}"
    )


async def test_tls_with_a_ca_file_and_a_client_certificate(
    broker: Broker, certs: Path, tmp_path: Path
) -> None:
    client = {"cert_file": certs / "client.crt", "key_file": certs / "client.key"}
    async with running_app(tmp_path, config(broker, ca_file=certs / "ca.crt", **client)) as app:
        await app.online()
        async with watcher(
            broker,
            tls_params=aiomqtt.TLSParameters(
                ca_certs=str(certs / "ca.crt"),
                certfile=str(certs / "client.crt"),
                keyfile=str(certs / "client.key"),
            ),
        ) as w:
            found = await retained(w, "sysmenu/pi-1/status")
    assert found == {"sysmenu/pi-1/status": b"online"}
    # without its client certificate the broker (require_certificate) turns it away
    async with running_app(tmp_path, config(broker, ca_file=certs / "ca.crt"), name="nocert") as app:
        await app.refused()
        assert app.link.connections == 0


async def test_a_broker_the_system_cas_do_not_know_is_refused(broker: Broker, tmp_path: Path) -> None:
    async with running_app(tmp_path, config(broker, tls="true")) as app:
        error = await app.refused()
        r = await app.client.post("/api/system/commands/custom/a", headers={"X-Api-Key": app.key})
        assert r.status_code == 204
        assert app.link.connections == 0
    assert "certificate verify failed" in error
    # the refused attempts' sockets were closed, not left to the garbage collector
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


async def test_tls_files_that_cannot_be_used_are_named(broker: Broker, certs: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.crt"
    async with running_app(tmp_path, config(broker, ca_file=missing), name="missing") as app:
        error = await app.refused()
        r = await app.client.post("/api/system/commands/custom/a", headers={"X-Api-Key": app.key})
        assert r.status_code == 204
    assert f"sysmenu.mqtt.ca_file {missing}: No such file or directory" in error
    wrong_key = {"cert_file": certs / "client.crt", "key_file": certs / "server.key"}
    async with running_app(
        tmp_path, config(broker, ca_file=certs / "ca.crt", **wrong_key), name="key"
    ) as app:
        error = await app.refused()
    assert f"sysmenu.mqtt.cert_file {certs / 'client.crt'} / key_file {certs / 'server.key'}" in error
    assert "key values mismatch" in error
