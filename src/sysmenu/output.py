"""Bounded output capture: keep the head and the tail, count what was dropped."""

from __future__ import annotations


class Output:
    """Bytes of one stream, at most `limit` kept: the first half and the last half.

    Memory stays bounded however much a command prints; `text()` says how
    many bytes were left out between head and tail.
    """

    __slots__ = ("_half", "head", "limit", "tail", "total")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._half = limit // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self._half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            excess = len(self.tail) - (self.limit - self._half)
            if excess > 0:
                del self.tail[:excess]

    @property
    def dropped(self) -> int:
        return self.total - len(self.head) - len(self.tail)

    def text(self) -> str:
        if not self.dropped:
            return (self.head + self.tail).decode("utf-8", "replace")
        head = self.head.decode("utf-8", "replace")
        tail = self.tail.decode("utf-8", "replace")
        return f"{head}\n[... {self.dropped} bytes dropped ...]\n{tail}"
