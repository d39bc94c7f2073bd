"""A broker that speaks only MQTT 3.1.1: a small TCP proxy in front of a real Mosquitto.

Mosquitto 2 cannot be told to refuse MQTT v5, so this stands in front of it and does what
a 3.1.1-only broker does by the MQTT 3.1.1 spec (3.1.2.2): a CONNECT whose protocol level
is 5 gets a CONNACK with return code 0x01 (unacceptable protocol version, in 3.1.1's
format: ``20 02 00 01``) and the connection is closed; any other CONNECT is passed on to
Mosquitto unchanged, and then bytes go both ways until either side closes.

It runs its own event loop in a thread, so a test can use it from any event loop, or
none, and a sysmenu server in another process can connect to it. Bounded: at most
`MAX_CONNECTIONS` at once, a CONNECT of at most `MAX_CONNECT` bytes that must arrive within
`CONNECT_TIMEOUT` seconds, reads of at most `CHUNK` bytes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from tests.e2e.broker import Broker, mqtt_section
from tests.e2e.server import free_port

MAX_CONNECTIONS = 64
MAX_CONNECT = 65536
CONNECT_TIMEOUT = 10.0
CHUNK = 65536
REFUSE_PROTOCOL = bytes([0x20, 0x02, 0x00, 0x01])  # CONNACK, remaining length 2, no session, rc 1
_CALL_TIMEOUT = 15.0

_T = TypeVar("_T")


class Mqtt311Proxy:
    """Listens on 127.0.0.1:`port` and forwards to the Mosquitto on `upstream_port`."""

    def __init__(self, upstream_port: int, port: int | None = None) -> None:
        self.upstream_port = upstream_port
        self.port = port or free_port()
        self.levels: list[int] = []  # the protocol level of every CONNECT, in order
        self.refused = 0  # CONNECTs answered with "unacceptable protocol version"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mqtt311-proxy", daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._serving: set[asyncio.Task[Any]] = set()

    # -- from the test's side (any thread) ----------------------------------------

    def _call(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(_CALL_TIMEOUT)

    def start(self) -> None:
        self._call(self._start())

    def stop(self) -> None:
        """Stop listening and cut every connection (as a broker that goes away)."""
        self._call(self._stop())

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_CALL_TIMEOUT)
        self._loop.close()

    def mqtt_section(self, **keys: object) -> str:
        return mqtt_section(self.port, **keys)

    # -- in the proxy's loop ------------------------------------------------------

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._open):
            writer.transport.abort()
        if self._serving:
            await asyncio.wait(self._serving, timeout=_CALL_TIMEOUT / 2)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._open) >= MAX_CONNECTIONS:
            writer.transport.abort()
            return
        self._open.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._serving.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                connect = await _read_connect(reader)
            if connect is None:
                return
            level = _protocol_level(connect)
            if level is None:
                return
            self.levels.append(level)
            if level == 5:
                self.refused += 1
                writer.write(REFUSE_PROTOCOL)
                await writer.drain()
                return
            up_reader, upstream = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            self._open.add(upstream)
            upstream.write(connect)
            await asyncio.gather(_pump(reader, upstream), _pump(up_reader, writer))
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            self._serving.discard(task)
            for side in (writer, upstream):
                if side is not None:
                    self._open.discard(side)
                    side.close()


async def _read_connect(reader: asyncio.StreamReader) -> bytes | None:
    """The whole first packet if it is a CONNECT of a sane size, else None."""
    first = await reader.readexactly(1)
    if first[0] != 0x10:
        return None
    header, length, shift = bytearray(first), 0, 0
    for _ in range(4):  # the remaining length: up to four 7-bit digits
        digit = (await reader.readexactly(1))[0]
        header.append(digit)
        length |= (digit & 0x7F) << shift
        shift += 7
        if not digit & 0x80:
            break
    else:
        return None
    if length > MAX_CONNECT:
        return None
    return bytes(header) + await reader.readexactly(length)


def _protocol_level(connect: bytes) -> int | None:
    """The protocol level byte, after the fixed header and the protocol name."""
    start = 2
    while connect[start - 1] & 0x80:
        start += 1
    if len(connect) < start + 2:
        return None
    name_length = int.from_bytes(connect[start : start + 2], "big")
    at = start + 2 + name_length
    return connect[at] if at < len(connect) else None


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until the reader ends, then close the writer: either side closing closes both."""
    try:
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


@contextmanager
def mqtt311_only(broker: Broker) -> Iterator[Mqtt311Proxy]:
    """A 3.1.1-only broker in front of `broker`, listening until the block ends."""
    proxy = Mqtt311Proxy(broker.port)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.close()
