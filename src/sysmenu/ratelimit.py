"""Failed-attempt limits per client address (API-key guessing, password guessing)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque


class FailureLimiter:
    """At most `limit` failures per address within `window` seconds.

    Past that the address is refused until its oldest failure leaves the
    window; other addresses are not affected. Memory is bounded: at most
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
        failures = self._recent(address or "", now)
        if failures is None or len(failures) < self.limit:
            return 0
        return max(1, math.ceil(failures[0] + self.window - now))

    def fail(self, address: str | None) -> None:
        key = address or ""
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
        self._failures.pop(address or "", None)
