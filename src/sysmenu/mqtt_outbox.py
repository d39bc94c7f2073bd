"""What the MQTT link has to publish, in order: retained states replace their older
selves, and a bounded number wait while the broker is away (the oldest go first)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

log = logging.getLogger("sysmenu.mqtt")


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    payload: bytes
    retain: bool = False
    correlation: bytes | None = None


class Outbox:
    def __init__(self, limit: int) -> None:
        self.limit = limit  # 0: no bound
        self.dropped = 0  # messages the full outbox had to let go
        self._items: deque[Outgoing] = deque()
        self._wake = asyncio.Event()

    def __iter__(self) -> Iterator[Outgoing]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Outgoing) -> None:
        if item.retain:  # only the newest retained message of a topic counts
            stale = [o for o in self._items if o.retain and o.topic == item.topic]
            for old in stale:
                self._items.remove(old)
        if self.limit and len(self._items) >= self.limit:
            self._items.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning("MQTT outbox full: %d message(s) dropped so far", self.dropped)
        self._items.append(item)
        self._wake.set()

    def first(self, count: int) -> list[Outgoing]:
        return list(self._items)[:count]

    def sent(self, batch: list[Outgoing]) -> None:
        """`batch` is with the broker: it leaves (those of it a newer state replaced are gone already)."""
        done = {id(item) for item in batch}
        self._items = deque(o for o in self._items if id(o) not in done)

    async def wait(self) -> None:
        """Until something is put."""
        self._wake.clear()
        await self._wake.wait()
