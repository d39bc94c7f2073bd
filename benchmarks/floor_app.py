"""The ASGI floor: a bare ASGI callable answering every request with one constant body.

Run under uvicorn with sysmenu's settings, it is what a request costs without any
framework, routing or authentication. The body is read once from the file named
by ``SYSMENU_BENCH_FLOOR_BODY`` (the bench gives it sysmenu's own list answer, so
both send the same bytes); without it the body is ``[]``.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

Message = MutableMapping[str, Any]

_path = os.environ.get("SYSMENU_BENCH_FLOOR_BODY")
BODY = Path(_path).read_bytes() if _path else b"[]"
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
