"""Failed-attempt limits per client address (API-key guessing, password guessing)."""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict, deque
from functools import lru_cache

IPV6_PREFIX = 64  # one IPv6 host usually holds a whole /64 (privacy addresses, SLAAC)


@lru_cache(maxsize=4096)
def address_key(address: str | None) -> str:
    """What failures are counted against: an IPv4 address, or an IPv6 address's /64
    (a client could otherwise take a fresh address for every few guesses)."""
    if not address:
        return ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/{IPV6_PREFIX}", strict=False))
    return str(ip)


class FailureLimiter:
    """At most `limit` failures per address within `window` seconds.

    Past that the address (for IPv6: its /64) is refused until its oldest failure
    leaves the window; other addresses are not affected. Memory is bounded: at most
    `max_addresses` are tracked, the least recently failing forgotten first.
    """

    def __init__(self, limit: int = 10, window: float = 60.0, max_addresses: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.max_addresses = max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, address: str, now: float) -> deque[float] | None:
        failures = self._failures.get(address)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        return failures

    def retry_after(self, address: str | None) -> int:
        """Seconds until `address` may try again; 0 when it may now."""
        now = time.monotonic()
        failures = self._recent(address_key(address), now)
        if failures is None or len(failures) < self.limit:
            return 0
        return max(1, math.ceil(failures[0] + self.window - now))

    def fail(self, address: str | None) -> None:
        key = address_key(address)
        now = time.monotonic()
        failures = self._recent(key, now)
        if failures is None:
            failures = self._failures[key] = deque(maxlen=self.limit)
            if len(self._failures) > self.max_addresses:
                self._failures.popitem(last=False)
        else:
            self._failures.move_to_end(key)
        failures.append(now)

    def forget(self, address: str | None) -> None:
        self._failures.pop(address_key(address), None)
