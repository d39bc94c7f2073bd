"""The Host allow-list against DNS rebinding (hosts.py): which Host values are answered."""

from __future__ import annotations

import pytest

from sysmenu.hosts import HostCheck, host_name, listens_on_loopback_only, local_url, open_to_rebinding
from tests.conftest import Env


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("Example.COM", "example.com"),
        ("example.com:5000", "example.com"),
        ("[::1]:80", "::1"),
        ("::1", "::1"),
        ("pi.local.", "pi.local"),
        ("127.0.0.1:5000", "127.0.0.1"),
    ],
)
def test_host_names_lose_port_brackets_case_and_trailing_dot(value: str, name: str) -> None:
    assert host_name(value) == name


def test_loopback_only_answers_loopback_names_and_the_allowed_ones() -> None:
    check = HostCheck(["127.0.0.1"], [])
    assert check.enforced
    for host in (
        "localhost",
        "localhost:5000",
        "127.0.0.1:5000",
        "127.9.9.9",
        "[::1]:5000",
        "app.localhost",
        None,
    ):
        assert check.allows(host), host
    for host in ("evil.example", "127.0.0.1.evil.example", "localhost.evil.example", "192.168.1.20", ""):
        assert not check.allows(host), host
    assert "sysmenu.allowed_hosts" in check.refusal("evil.example")
    allowed = HostCheck(["::1"], ["octopi.local", ".example.org", "192.168.1.20"])
    for host in ("octopi.local:80", "example.org", "menu.example.org", "192.168.1.20:5000", "localhost"):
        assert allowed.allows(host), host
    assert not allowed.allows("badexample.org") and not allowed.allows("octopi.local.evil")


def test_beyond_loopback_any_host_unless_allowed_hosts_is_set_and_the_log_says_so() -> None:
    assert not listens_on_loopback_only(["0.0.0.0"]) and not listens_on_loopback_only(["192.168.1.20"])
    assert listens_on_loopback_only(["127.0.0.1"]) and listens_on_loopback_only(["::1"])
    assert listens_on_loopback_only(["localhost"])
    open_check = HostCheck(["0.0.0.0"], [])
    assert not open_check.enforced and open_check.allows("anything.example")
    warning = open_to_rebinding(open_check, ["0.0.0.0"])
    assert warning and "sysmenu.allowed_hosts" in warning and "DNS rebinding" in warning
    closed = HostCheck(["0.0.0.0"], ["pi.lan"])
    assert closed.enforced and closed.allows("pi.lan:5000") and not closed.allows("evil.example")
    assert open_to_rebinding(closed, ["0.0.0.0"]) is None
    assert open_to_rebinding(HostCheck(["127.0.0.1"], []), ["127.0.0.1"]) is None
    assert HostCheck(["127.0.0.1"], ["*"]).allows("anything.example")


@pytest.mark.anyio
async def test_a_refused_host_is_400_everywhere_including_the_fast_path(env: Env) -> None:
    for method, path in [
        ("GET", "/api/system/commands"),
        ("POST", "/api/system/commands/custom/hello"),
        ("GET", "/"),
        ("POST", "/api/login"),
    ]:
        r = await env.client.request(method, path, headers=env.auth() | {"Host": "evil.example"})
        assert r.status_code == 400, path
        assert "sysmenu.allowed_hosts" in r.json()["error"]
    assert env.store.runs.list(limit=10) == []


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:5000"),
        ("", "http://127.0.0.1:5000"),
        ("::", "http://[::1]:5000"),
        ("::1", "http://[::1]:5000"),
        ("192.0.2.7", "http://192.0.2.7:5000"),
        ("pi.lan", "http://pi.lan:5000"),
    ],
)
def test_the_local_url_of_a_listening_address(host: str, url: str) -> None:
    """What the doctor and `runs follow` connect to: a wildcard address on loopback."""
    assert local_url(host, 5000) == url
