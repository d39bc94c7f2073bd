"""Password checks: limited per address and user name, counted before they are
verified, and at most `CHECK_SLOTS` argon2 verifications at once.

An attempt is counted as a failure *before* its hash is verified (and the count
taken back if the password was right): checking the limit, awaiting argon2 and
only then counting let any number of simultaneous guesses through the limit.

Failures are counted per (address, user name), so that a correct password from
another address always works, whoever guesses elsewhere; and per address over all
names, with `SPRAY_FACTOR` times the limit, so that one address cannot try a few
passwords on every name. An argon2 check costs `passwords.PRODUCTION.memory_cost` of memory:
`CHECK_SLOTS` run at once, up to `MAX_WAITING` more wait up to `WAIT` seconds for
a slot, and beyond that the answer is 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from starlette.concurrency import run_in_threadpool

from .errors import ServiceUnavailable, TooManyRequests
from .passwords import verify_password
from .ratelimit import FailureLimiter, address_key

CHECK_SLOTS = 2
MAX_WAITING = 16
WAIT = 5.0
SPRAY_FACTOR = 3
MAX_NAME = 256


def _pair(client: str | None, name: str) -> str:
    # Not an address, so FailureLimiter keeps it as it is.
    return f"{address_key(client)}\x00{name[:MAX_NAME]}"


class PasswordChecks:
    def __init__(self, limit: int, window: float, observer: Callable[[str], None] | None = None) -> None:
        # The observer (metrics) hears of each failed login and refusal once: from by_name.
        self.by_name = FailureLimiter(limit, window, observer=observer)
        self.by_address = FailureLimiter(limit * SPRAY_FACTOR, window)
        self.slots = asyncio.Semaphore(CHECK_SLOTS)
        self.waiting = 0  # checks waiting for a slot (more than MAX_WAITING: 503)

    def configure(self, limit: int, window: float) -> None:
        """New limits (a config reload); failures counted so far stay counted."""
        self.by_name.configure(limit, window)
        self.by_address.configure(limit * SPRAY_FACTOR, window)

    def _refuse_if_limited(self, client: str | None, name: str) -> None:
        wait = max(self.by_name.retry_after(_pair(client, name)), self.by_address.retry_after(client))
        if wait:
            self.by_name.refused()
            raise TooManyRequests(
                f"Too many failed logins from this address; try again in {wait} seconds",
                headers={"Retry-After": str(wait)},
            )

    async def check(self, client: str | None, name: str, stored: str, password: str) -> bool:
        """Whether `password` matches `stored`, for a login as `name` from `client`.
        429 when they have failed too often lately, 503 when too many checks wait."""
        self._refuse_if_limited(client, name)
        # Counted before the check: simultaneous guesses all see each other's counts.
        stamps = (self.by_name.fail(_pair(client, name)), self.by_address.fail(client))
        checked = ok = False
        try:
            async with self._slot():
                ok = await run_in_threadpool(verify_password, stored, password)
                checked = True
        finally:
            if ok or not checked:  # right, or never checked (503, cancelled): no failure
                self.by_name.retract(_pair(client, name), stamps[0])
                self.by_address.retract(client, stamps[1])
        return ok

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        if self.waiting >= MAX_WAITING:
            raise ServiceUnavailable(
                "Too many logins at once; try again shortly", headers={"Retry-After": "1"}
            )
        self.waiting += 1
        try:
            await asyncio.wait_for(self.slots.acquire(), WAIT)
        except TimeoutError:
            raise ServiceUnavailable(
                "Too many logins at once; try again shortly", headers={"Retry-After": "1"}
            ) from None
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self.slots.release()
