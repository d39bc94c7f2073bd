"""API-key guessing is limited per address; other addresses keep working."""

from __future__ import annotations

import httpx
import pytest

from sysmenu.ratelimit import FailureLimiter
from tests.conftest import Env

pytestmark = pytest.mark.anyio

URL = "/api/system/commands"


async def test_wrong_keys_from_one_address_get_429(env: Env) -> None:
    attacker = {"X-Forwarded-For": "203.0.113.7"}
    for _ in range(10):
        r = await env.client.get(URL, headers=attacker | {"X-Api-Key": "guess"})
        assert r.status_code == 403
    r = await env.client.get(URL, headers=attacker | {"X-Api-Key": "guess"})
    assert r.status_code == 429
    assert "try again in" in r.json()["error"]
    assert 1 <= int(r.headers["retry-after"]) <= 60
    # a valid key from that address is never refused for its failures (issue 16)...
    r = await env.client.get(URL, headers=attacker | env.auth())
    assert r.status_code == 200
    # ...and other addresses are not locked out
    r = await env.client.get(URL, headers={"X-Forwarded-For": "198.51.100.1"} | env.auth())
    assert r.status_code == 200
    r = await env.client.get(URL, headers=env.auth())
    assert r.status_code == 200


def peer_client(env: Env, host: str) -> httpx.AsyncClient:
    """A client of the same app connecting from `host` (not a trusted proxy unless configured)."""
    app = env.client._transport.app  # type: ignore[attr-defined]
    transport = httpx.ASGITransport(app=app, client=(host, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://example.com")


@pytest.mark.parametrize("place", ["header", "bearer", "query"])
async def test_every_key_place_counts_and_is_limited(env: Env, place: str) -> None:
    def wrong(i: int) -> dict[str, object]:
        guess = f"guess-{i}"
        return {
            "header": {"headers": {"X-Api-Key": guess}},
            "bearer": {"headers": {"Authorization": f"Bearer {guess}"}},
            "query": {"params": {"apikey": guess}},
        }[place]

    async with peer_client(env, "192.0.2.10") as attacker:
        codes = [(await attacker.get(URL, **wrong(i))).status_code for i in range(12)]  # type: ignore[arg-type]
        assert codes == [403] * 10 + [429] * 2
    async with peer_client(env, "192.0.2.11") as neighbour:
        assert (await neighbour.get(URL, headers=env.auth())).status_code == 200


async def test_forwarded_for_from_an_untrusted_peer_is_not_believed(env: Env) -> None:
    """A direct client cannot dodge the limit by naming a new address in each request."""
    async with peer_client(env, "192.0.2.20") as attacker:
        for i in range(10):
            r = await attacker.get(URL, headers={"X-Api-Key": "guess", "X-Forwarded-For": f"198.51.100.{i}"})
            assert r.status_code == 403
        r = await attacker.get(URL, headers={"X-Api-Key": "guess", "X-Forwarded-For": "198.51.100.99"})
        assert r.status_code == 429
    r = await env.client.get(URL, headers=env.auth() | {"X-Forwarded-For": "198.51.100.1"})
    assert r.status_code == 200  # the addresses it named were not locked out either


async def test_client_written_forwarded_for_entries_behind_a_proxy_are_not_believed(env: Env) -> None:
    """A proxy appends the address it saw to what the client sent: the client is the
    rightmost entry that is not a trusted proxy. (sysmenu took the leftmost, which the
    client writes itself, so rotating it evaded the limit and forged the audit log.)"""
    for i in range(10):
        forwarded = {"X-Forwarded-For": f"10.9.9.{i}, 203.0.113.50"}
        r = await env.client.get(URL, headers=forwarded | {"X-Api-Key": "guess"})
        assert r.status_code == 403
    r = await env.client.get(
        URL, headers={"X-Forwarded-For": "10.9.9.77, 203.0.113.50", "X-Api-Key": "guess"}
    )
    assert r.status_code == 429
    # two headers are one list; trusted proxies (127.0.0.1 here) in the chain are skipped
    headers = [
        ("X-Forwarded-For", "10.0.0.1"),
        ("X-Forwarded-For", "203.0.113.50, 127.0.0.1"),
        ("X-Api-Key", "guess"),
    ]
    assert (await env.client.get(URL, headers=headers)).status_code == 429
    r = await env.client.get(URL, headers={"X-Forwarded-For": "203.0.113.51"} | env.auth())
    assert r.status_code == 200
    r = await env.client.post(
        f"{URL}/custom/hello", headers={"X-Forwarded-For": "1.2.3.4, 203.0.113.51"} | env.auth()
    )
    assert r.status_code == 204
    assert env.store.runs.list()[0].client == "203.0.113.51"


def test_ipv6_addresses_count_per_64_and_mapped_ipv4_as_ipv4() -> None:
    limiter = FailureLimiter(limit=3, window=60)
    for i in range(3):  # a fresh address from the same /64 for every guess
        limiter.fail(f"2001:db8:1:2::{i + 1:x}")
    assert limiter.retry_after("2001:db8:1:2:ffff::9") > 0
    assert limiter.retry_after("2001:db8:1:3::1") == 0  # the next /64 is someone else
    for _ in range(3):
        limiter.fail("::ffff:192.0.2.7")
    assert limiter.retry_after("192.0.2.7") > 0
    assert limiter.retry_after("192.0.2.8") == 0


async def test_ipv6_client_rotating_addresses_behind_a_proxy_gets_429(env: Env) -> None:
    for i in range(10):
        forwarded = {"X-Forwarded-For": f"2001:db8:aa:bb::{i + 1:x}", "X-Api-Key": "guess"}
        assert (await env.client.get(URL, headers=forwarded)).status_code == 403
    r = await env.client.get(URL, headers={"X-Forwarded-For": "2001:db8:aa:bb::abcd", "X-Api-Key": "guess"})
    assert r.status_code == 429
    r = await env.client.get(URL, headers={"X-Forwarded-For": "2001:db8:aa:cc::1"} | env.auth())
    assert r.status_code == 200


async def test_no_key_is_not_counted(env: Env) -> None:
    for _ in range(20):
        assert (await env.client.get(URL)).status_code == 403
    assert (await env.client.get(URL, headers=env.auth())).status_code == 200


def test_limiter_window_and_memory_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("sysmenu.ratelimit.time.monotonic", lambda: now[0])
    limiter = FailureLimiter(limit=3, window=10, max_addresses=5)
    for _ in range(3):
        limiter.fail("a")
    assert limiter.retry_after("a") == 10
    now[0] += 4
    assert limiter.retry_after("a") == 6
    now[0] += 6
    assert limiter.retry_after("a") == 0
    for i in range(50):
        limiter.fail(f"x{i}")
    assert len(limiter._failures) <= 5


@pytest.mark.parametrize(
    ("hop", "address"),
    [
        ("198.51.100.7:4711", "198.51.100.7"),
        ("[2001:db8::1]:4711", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        (" 198.51.100.7 ", "198.51.100.7"),
        ("unknown", "unknown"),
    ],
)
def test_forwarded_for_entries_with_ports_are_addresses(hop: str, address: str) -> None:
    from sysmenu.auth import forwarded_address

    assert forwarded_address(hop) == address


async def test_a_config_reload_keeps_the_counts(env: Env) -> None:
    from sysmenu.config import parse
    from tests.conftest import with_test_host

    for _ in range(10):
        await env.client.get(URL, headers={"X-Api-Key": "guess"})
    assert (await env.client.get(URL, headers={"X-Api-Key": "guess"})).status_code == 429
    state = env.app.state.sysmenu  # type: ignore[union-attr]
    state.apply(with_test_host(parse("sysmenu:\n  key_failure_limit: 12\n")))
    codes = [(await env.client.get(URL, headers={"X-Api-Key": "guess"})).status_code for _ in range(3)]
    assert codes == [403, 403, 429]  # the 10 counted before the reload still count


def test_a_retracted_failure_no_longer_counts() -> None:
    limiter = FailureLimiter(limit=2, window=60)
    stamp = limiter.fail("192.0.2.1")
    limiter.fail("192.0.2.1")
    assert limiter.retry_after("192.0.2.1") > 0
    limiter.retract("192.0.2.1", stamp)
    assert limiter.retry_after("192.0.2.1") == 0
