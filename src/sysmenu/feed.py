"""A run's live output for followers: a bounded chronological log, and one queue per
follower that ends with None when the run ends."""

from __future__ import annotations

import asyncio
from collections import deque

FOLLOWER_BACKLOG = 256  # queued chunks before a slow follower skips output

Chunk = tuple[str, str]  # (stream, text): stream is "stdout", "stderr" or "notice"


class OutputFeed:
    def __init__(self, limit: int) -> None:
        self._log: deque[Chunk] = deque()
        self._log_bytes = 0
        self._limit = limit
        self.dropped = 0
        self._followers: dict[asyncio.Queue[Chunk | None], int] = {}
        self.closed = False

    def emit(self, stream: str, text: str) -> None:
        self._log.append((stream, text))
        self._log_bytes += len(text)
        while self._log_bytes > self._limit and len(self._log) > 1:
            _, old = self._log.popleft()
            self._log_bytes -= len(old)
            self.dropped += len(old)
        for queue, skipped in list(self._followers.items()):
            # A follower that does not keep up skips output instead of growing memory.
            if queue.qsize() >= FOLLOWER_BACKLOG:
                self._followers[queue] = skipped + len(text)
                continue
            if skipped:
                queue.put_nowait(("notice", f"[... {skipped} characters skipped ...]\n"))
                self._followers[queue] = 0
            queue.put_nowait((stream, text))

    def subscribe(self) -> tuple[list[Chunk], asyncio.Queue[Chunk | None] | None]:
        """What was printed so far, and a queue of what follows (None once the feed is closed).

        The queue ends with None when the feed closes; call `unsubscribe` when done.
        """
        history = list(self._log)
        if self.closed:
            return history, None
        queue: asyncio.Queue[Chunk | None] = asyncio.Queue()
        self._followers[queue] = 0
        return history, queue

    def unsubscribe(self, queue: asyncio.Queue[Chunk | None]) -> None:
        self._followers.pop(queue, None)

    def close(self) -> None:
        self.closed = True
        for queue in self._followers:
            queue.put_nowait(None)
