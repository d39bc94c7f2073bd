"""Failed-attempt limits per client address (API-key guessing, password guessing)."""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
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

    def __init__(
        self,
        limit: int = 10,
        window: float = 60.0,
        max_addresses: int = 10_000,
        observer: Callable[[str], None] | None = None,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_addresses = max_addresses
        self.observer = observer  # told "failure" and "refusal" (metrics)
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

    def refused(self) -> None:
        """A request was refused because of this limiter (for the observer)."""
        if self.observer is not None:
            self.observer("refusal")

    def configure(self, limit: int, window: float) -> None:
        """New limits (a config reload): the failures counted so far stay counted."""
        if limit != self.limit:
            for key, failures in self._failures.items():
                self._failures[key] = deque(failures, maxlen=limit)
        self.limit, self.window = limit, window

    def fail(self, address: str | None) -> float:
        """Count a failure of `address`; returns its stamp (for `retract`)."""
        if self.observer is not None:
            self.observer("failure")
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
        return now

    def retract(self, address: str | None, stamp: float) -> None:
        """Take back the failure counted at `stamp` (an attempt counted before it was
        checked, which then succeeded)."""
        failures = self._failures.get(address_key(address))
        if failures is not None and stamp in failures:
            failures.remove(stamp)

    def forget(self, address: str | None) -> None:
        self._failures.pop(address_key(address), None)

    def snapshot(self) -> dict[str, list[float]]:
        """The failures still in the window, by address key, as Unix times (for a
        later process: monotonic times mean nothing to it)."""
        now, wall = time.monotonic(), time.time()
        return {
            key: [wall - (now - t) for t in failures]
            for key, failures in self._failures.items()
            if failures and failures[-1] > now - self.window
        }

    def restore(self, snapshot: dict[str, list[float]]) -> None:
        """Take over the failures of `snapshot` that are still in the window."""
        now, wall = time.monotonic(), time.time()
        # least recently failing first, as `fail` keeps them
        for key, times in sorted(snapshot.items(), key=lambda item: max(item[1], default=0.0)):
            recent = sorted(now - (wall - t) for t in times if wall - self.window < t <= wall)
            if recent:
                self._failures[key] = deque(recent[-self.limit :], maxlen=self.limit)
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)
