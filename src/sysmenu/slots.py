"""Admission: how many runs of one command may be active at once, and the queue of
requests waiting for a turn.

A turn is a `Slot`, taken before the run is recorded and released exactly once
by whoever holds it. A waiter that is woken but gives up (cancelled) passes its
turn to the next waiter, so a turn is never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from .catalogue import CommandSpec
from .errors import Conflict, Stopping

Key = tuple[str, str]  # (source, action)
STOPPING = "The server is stopping: the command was not run"


class Slot:
    """One admitted run of a command; `run_id` is known once the run is recorded."""

    __slots__ = ("key", "run_id")

    def __init__(self, key: Key) -> None:
        self.key = key
        self.run_id: int | None = None


class Slots:
    def __init__(self) -> None:
        self._held: dict[Key, list[Slot]] = {}
        self._waiting: dict[Key, deque[asyncio.Future[None]]] = {}
        self.closed = False

    def held(self, spec: CommandSpec) -> list[Slot]:
        return list(self._held.get((spec.source, spec.action), ()))

    async def acquire(self, spec: CommandSpec) -> Slot:
        """A turn for `spec`: at once if it has room, after a wait if it queues; else 409."""
        if self.closed:
            raise Stopping(STOPPING)
        key = (spec.source, spec.action)
        held = self._held.setdefault(key, [])
        if len(held) >= spec.concurrency:
            if not spec.queue:
                ids = ", ".join(str(s.run_id) for s in held if s.run_id is not None) or "starting"
                raise Conflict(f"Command {spec.source}:{spec.action} is already running (run {ids})")
            await self._wait_turn(key, spec.concurrency)
        slot = Slot(key)
        held.append(slot)
        return slot

    async def _wait_turn(self, key: Key, concurrency: int) -> None:
        queue = self._waiting.setdefault(key, deque())
        first = True
        while len(self._held[key]) >= concurrency:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            # A waiter woken but beaten to the turn keeps its place at the front.
            if first:
                queue.append(waiter)
            else:
                queue.appendleft(waiter)
            first = False
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake(key)  # it was given the turn: pass it on
                raise
            finally:
                with contextlib.suppress(ValueError):
                    queue.remove(waiter)
            if self.closed:
                raise Stopping(STOPPING)

    def waiting_by_command(self) -> dict[str, int]:
        """How many requests wait for a turn, by command (``source:action``)."""
        return {f"{s}:{a}": len(q) for (s, a), q in self._waiting.items() if q}

    def release(self, slot: Slot) -> None:
        """End `slot`'s turn and hand it to the next waiter."""
        self._held[slot.key].remove(slot)
        self._wake(slot.key)

    @property
    def waiting(self) -> int:
        """How many starts wait for a turn."""
        return sum(1 for queue in self._waiting.values() for waiter in queue if not waiter.done())

    def _wake(self, key: Key) -> None:
        queue = self._waiting.get(key)
        while queue:
            waiter = queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    def close(self) -> None:
        """Server stop: no new turns; every waiter is woken to be refused."""
        self.closed = True
        for queue in self._waiting.values():
            for waiter in queue:
                if not waiter.done():
                    waiter.set_result(None)
