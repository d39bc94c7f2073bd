"""Connection caps: a global one that refuses only the excess, one per address, and
refusal logs that cannot flood the journal.

A connection is admitted when it is made, in the order connections arrive; an
admitted connection holds its place until it closes. A connection beyond either cap
is answered 503 once its request's headers are in (answering before reading the
request would make the kernel reset the connection and lose the answer) and closed.

The per-address cap stops one client from holding every connection (idle sockets,
slow readers). Addresses that carry many clients are exempt: by default the trusted
proxies (loopback, where OctoPi's HAProxy runs), else ``connection_cap_exempt``.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

from .ratelimit import address_key

log = logging.getLogger("sysmenu.connections")

LOG_INTERVAL = 10.0  # seconds: at most one refusal line per reason this often


@lru_cache(maxsize=64)
def _networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in entries)


@dataclass
class RefusalLog:
    """One warning per reason per `interval` seconds, counting the refusals it stands for."""

    interval: float = LOG_INTERVAL
    _last: dict[str, float] = field(default_factory=dict)
    _unlogged: Counter[str] = field(default_factory=Counter)

    def refused(self, reason: str, address: str | None) -> None:
        now = time.monotonic()
        self._unlogged[reason] += 1
        if now - self._last.get(reason, -self.interval) < self.interval:
            return
        count = self._unlogged.pop(reason)
        self._last[reason] = now
        log.warning(
            "refused or cut off %d connection(s) in the last %g s: %s (latest from %s)",
            count,
            self.interval,
            reason,
            address or "?",
        )


class ConnectionCaps:
    """Which connections may be served: at most `total` at once, and at most
    `per_address` from one address (an IPv6 address counts as its /64) unless the
    address is in `exempt`. 0 for `per_address` turns that cap off."""

    def __init__(self, total: int, per_address: int, exempt: list[str]) -> None:
        self.total = total
        self.per_address = per_address
        self.exempt = tuple(exempt)
        self.open = 0
        self.by_address: Counter[str] = Counter()
        self.refusals = RefusalLog()

    def configure(self, total: int, per_address: int, exempt: list[str]) -> None:
        """New limits (a config reload); connections already admitted stay."""
        self.total, self.per_address, self.exempt = total, per_address, tuple(exempt)

    def _exempt(self, address: str | None) -> bool:
        if not address:
            return True  # a Unix socket: no address to count
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in _networks(self.exempt))

    def admit(self, address: str | None) -> str | None:
        """Take a place for a connection from `address`: None, or why it is refused
        (then it holds no place and needs no `release`)."""
        if self.open >= self.total:
            reason = f"more than max_connections ({self.total}) open"
            self.refusals.refused(reason, address)
            return reason
        key = address_key(address)
        if self.per_address and self.by_address[key] >= self.per_address and not self._exempt(address):
            reason = f"more than max_connections_per_address ({self.per_address}) from one address"
            self.refusals.refused(reason, address)
            return reason
        self.open += 1
        self.by_address[key] += 1
        return None

    def release(self, address: str | None) -> None:
        key = address_key(address)
        self.open -= 1
        self.by_address[key] -= 1
        if self.by_address[key] <= 0:
            del self.by_address[key]
