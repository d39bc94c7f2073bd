"""sysmenu's own run API: history, one run with its output, kill, live events."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from . import __version__
from .access import READ, SYSTEM, Grant
from .auth import FORBIDDEN, Identity, still_valid
from .database import MAX_ID
from .errors import BadRequest, Conflict, Forbidden, NotFound, SysmenuError
from .models import RUN_STATES, RunRecord
from .openapi import openapi_document
from .openapi_commands import described
from .params import int_param, time_param
from .responses import API_HEADERS, JSON, json_response
from .runlog import MAX_RUNS_PAGE
from .runner import Run
from .verdicts import Verdicts

if TYPE_CHECKING:
    from .state import State

HEARTBEAT = 15.0  # seconds between SSE comments, so proxies keep the stream open
CREDENTIAL_CHECK = 2.0  # seconds between checks that a stream's credential is still valid


def _run_id(request: Request) -> int:
    """The run id in the path: decimal digits naming a possible run, else 404."""
    raw: str = request.path_params["run_id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > len(str(MAX_ID)) or int(raw) > MAX_ID:
        raise NotFound(f"No run {raw[:40]}")
    return int(raw)


def _sse(event: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


@functools.cache
def plain_openapi() -> bytes:
    """The document anyone may read, built when first asked for (once per process: it
    depends on nothing but this code), not at start-up."""
    return json.dumps(openapi_document()).encode()


class RunsApi:
    def __init__(self, state: State) -> None:
        self.state = state
        self.verdicts = Verdicts()
        self._described: tuple[object, bytes] | None = None  # (catalogue, its document)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/openapi.json", self.openapi, methods=["GET"]),
            Route("/api/status", self.status, methods=["GET"]),
            Route("/api/runs", self.list_runs, methods=["GET"]),
            # The id is read by _run_id, not Starlette's int convertor: that one turns
            # 5000 digits into a ValueError (Python's int-digit limit), a 500.
            Route("/api/runs/{run_id}", self.get_run, methods=["GET"]),
            Route("/api/runs/{run_id}/kill", self.kill_run, methods=["POST"]),
            Route("/api/runs/{run_id}/events", self.events, methods=["GET"]),
        ]

    async def openapi(self, request: Request) -> Response:
        """The API's description; for a caller with SYSTEM, also each command with
        arguments and their schema (anyone else learns no command from it)."""
        try:
            await self.state.require(request, SYSTEM)
        except SysmenuError:  # no key, a wrong one, a limited address: the plain document
            return Response(plain_openapi(), media_type=JSON, headers=API_HEADERS)
        catalogue = self.state.catalogue
        if self._described is None or self._described[0] is not catalogue:
            self._described = (catalogue, json.dumps(described(catalogue)).encode())
        return Response(self._described[1], media_type=JSON, headers=API_HEADERS)

    async def status(self, request: Request) -> Response:
        """sysmenu's own state: version, the config in force (and a rejected change), runs, and
        whether each command can run here (`sysmenu doctor`'s verdict, as the server's user)."""
        _, grant = await self.state.caller(request)
        if not grant.can(READ):
            raise Forbidden(FORBIDDEN)
        state = self.state.config_state
        verdicts = await self.verdicts.get(self.state.catalogue)
        db = self.state.store.db
        return json_response(
            {
                "version": __version__,
                "config": {
                    "source": state.source,
                    "loaded": state.loaded,
                    "error": state.error,
                    "error_at": state.error_at,
                    "warnings": list(self.state.config.warnings),
                    "pending_restart": state.pending_restart,
                },
                "database": db.health.current(),
                "running": sorted(self.state.runner.running),
                "commands": [v for v in verdicts if grant.may_see(v["source"], v["action"])],
                "waiting": self.state.runner.waiting(),
                "mqtt": link.status() if (link := getattr(request.app.state, "mqtt", None)) else None,
            }
        )

    async def _run(self, run_id: int) -> RunRecord:
        """A run with its output; a live run's output comes from memory."""
        if run_id > MAX_ID:
            raise NotFound(f"No run {run_id}")
        live = self.state.runner.known(run_id)  # memory is the truth while the end is unwritten
        if live is not None:
            return live.record()
        store = self.state.store
        record = await store.db.run(store.runs.get, run_id)
        if record is None:
            raise NotFound(f"No run {run_id}")
        return record

    async def _reader(self, request: Request) -> tuple[Identity, Grant]:
        """The caller if it may read some runs (all, or those of commands it may see)."""
        identity, grant = await self.state.caller(request)
        if not grant.sees_anything(self.state.catalogue.all_specs()):
            raise Forbidden(FORBIDDEN)
        return identity, grant

    async def _readable(self, grant: Grant, run_id: int) -> RunRecord:
        """Run `run_id` if `grant` may read it (403 before 404 for who may read none: `_reader`)."""
        run = await self._run(run_id)
        if not grant.may_read_run(run.source, run.action):
            raise Forbidden(FORBIDDEN)
        return run

    async def list_runs(self, request: Request) -> Response:
        _, grant = await self._reader(request)
        only = None
        if not grant.reads_all:
            specs = self.state.catalogue.all_specs()
            only = [(s.source, s.action) for s in specs if grant.may_read_run(s.source, s.action)]
        params = request.query_params
        state = params.get("state")
        if state is not None and state not in RUN_STATES:
            raise BadRequest(f"state must be one of {', '.join(RUN_STATES)}, got {state!r}")
        limit = int_param(request, "limit", 50, 1, MAX_RUNS_PAGE)
        before = int_param(request, "before", None, 1, MAX_ID)
        assert limit is not None
        store = self.state.store
        records = await store.db.run(
            store.runs.list,
            source=params.get("source"),
            action=params.get("action"),
            state=state,
            before=before,
            limit=limit,
            since=time_param(request, "since"),
            until=time_param(request, "until"),
            only=only,
        )
        known = self.state.runner.known
        runs = [(live.record(output=False) if (live := known(r.id)) else r).public() for r in records]
        page: dict[str, Any] = {"runs": runs}
        if len(runs) == limit:
            # Never the caller's key back in a body (``?apikey=`` stays in the caller's hands).
            kept = [(k, v) for k, v in params.multi_items() if k not in ("apikey", "before")]
            page["next"] = str(request.url.replace(query=urlencode([*kept, ("before", records[-1].id)])))
        return json_response(page)

    async def get_run(self, request: Request) -> Response:
        _, grant = await self._reader(request)
        return json_response((await self._readable(grant, _run_id(request))).public())

    async def kill_run(self, request: Request) -> Response:
        identity, grant = await self._reader(request)
        run_id = _run_id(request)
        run = await self._readable(grant, run_id)
        if not grant.may_kill(run.source, run.action):
            raise Forbidden(FORBIDDEN)
        live = self.state.runner.running.get(run_id)
        if live is None:
            raise Conflict(f"Run {run_id} is not running")
        live.kill()
        who = identity.who(self.state.proxies.client(request))
        store = self.state.store
        await store.db.run(store.audit.record, "kill", who, run=run_id)
        return json_response({"id": run_id, "state": "killing"}, 202)

    async def events(self, request: Request) -> Response:
        identity, grant = await self._reader(request)
        run_id = _run_id(request)
        run = await self._readable(grant, run_id)
        live = self.state.runner.running.get(run_id)

        async def valid() -> bool:
            store = self.state.store
            return await still_valid(request, store.accounts, store.sessions, identity)

        return StreamingResponse(
            self._stream(run, live, valid),
            media_type="text/event-stream",
            headers=API_HEADERS | {"X-Accel-Buffering": "no"},
        )

    async def _stream(
        self, run: RunRecord, live: Run | None, valid: Callable[[], Awaitable[bool]]
    ) -> AsyncIterator[bytes]:
        seq = 0
        start = {"id": run.id, "source": run.source, "action": run.action, "name": run.name}
        if run.arguments is not None:
            start["arguments"] = run.arguments  # as recorded: defaults in, secrets masked
        yield _sse("start", start | {"started": run.started})
        if live is None:  # finished: replay what is stored
            for stream, text in (("stdout", run.stdout), ("stderr", run.stderr)):
                if text:
                    seq += 1
                    yield _sse("output", {"stream": stream, "text": text}, seq)
        else:
            history, queue = live.subscribe()
            try:
                for stream, text in history:
                    seq += 1
                    yield _sse("output", {"stream": stream, "text": text}, seq)
                loop = asyncio.get_running_loop()
                checked = last_sent = loop.time()
                while queue is not None:
                    try:
                        item, got = await asyncio.wait_for(queue.get(), CREDENTIAL_CHECK), True
                    except TimeoutError:
                        item, got = None, False  # nothing new: only the checks below
                    now = loop.time()
                    if now - checked >= CREDENTIAL_CHECK:
                        if not await valid():  # revoked, logged out, removed: the stream ends here
                            return
                        checked = now
                    if not got:
                        if now - last_sent >= HEARTBEAT:
                            last_sent = now
                            yield b": keep-alive\n\n"
                        continue
                    last_sent = now
                    if item is None:
                        break
                    seq += 1
                    yield _sse("output", {"stream": item[0], "text": item[1]}, seq)
            finally:
                if queue is not None:
                    live.unsubscribe(queue)
            run = await self._run(run.id)
        end = {
            "id": run.id,
            "state": run.state,
            "returncode": run.returncode,
            "signal": run.signal,
            "duration": run.duration,
        }
        yield _sse("end", end, seq + 1)
