"""Idempotency-Key: one run per key and user, however many requests carry it at once.

A key is bound to the user who sent it (another user's same key is another key)
and to the command it first ran: reused for another command it gets 422. Of
several requests with the same key in flight, the first starts the run and the
others wait for it and then answer as a retry would; if the first one does not
start a run (its client left, the store refused), the next one tries.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from starlette.types import Receive

from .errors import Unprocessable
from .models import RunRecord

T = TypeVar("T")


class Claims:
    def __init__(self, find: Callable[[str | None, str], Awaitable[RunRecord | None]]) -> None:
        self._find = find
        self._pending: dict[tuple[str | None, str], asyncio.Future[None]] = {}

    async def previous(self, user: str | None, key: str, source: str, action: str) -> RunRecord | None:
        """The run this key already started (after waiting for a request with the same
        key that is starting one), or None: then the caller holds the key (see `hold`)."""
        while True:
            record = await self._find(user, key)
            if record is not None:
                if (record.source, record.action) != (source, action):
                    raise Unprocessable(
                        f"Idempotency-Key {key!r} was used for {record.source}:{record.action} "
                        f"(run {record.id}), not for {source}:{action}: use a new key"
                    )
                return record
            pending = self._pending.get((user, key))
            if pending is None:
                return None
            await asyncio.shield(pending)

    @contextlib.asynccontextmanager
    async def hold(self, user: str | None, key: str) -> AsyncIterator[None]:
        """Hold the key while starting its run: other requests with it wait."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[(user, key)] = done
        try:
            yield
        finally:
            del self._pending[(user, key)]
            done.set_result(None)


async def unless_client_leaves(receive: Receive, work: Awaitable[T]) -> T:
    """`work`'s result; if the client disconnects first, `work` is cancelled and
    `ClientLeft` raised (a queued request whose client left must never run later)."""
    task = asyncio.ensure_future(work)

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    watch = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if task.cancelled():
            raise ClientLeft
    return task.result()


class ClientLeft(Exception):
    """The client disconnected while its request waited for a slot."""
