"""The OctoPrint-compatible endpoints: System API and the version call clients make first."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from . import OCTOPRINT_VERSION, __version__
from .access import SOURCES, SYSTEM, Grant
from .arguments import Value, check_values
from .auth import FORBIDDEN, STALE_CREDENTIALS, Identity
from .catalogue import CommandSpec
from .config_actions import DIVIDER
from .errors import BadRequest, CommandFailed, Forbidden, NotFound, Unprocessable
from .idempotency import Claims, ClientLeft, unless_client_leaves
from .invocation import Invocation, same_values
from .models import RunRecord, Who
from .responses import API_HEADERS, JSON, NO_CONTENT, json_response
from .runner import DuplicateKey, Run

if TYPE_CHECKING:
    from .runner import Run
    from .state import State

log = logging.getLogger("sysmenu.api")
API_VERSION = "0.1"


class SystemApi:
    """Handlers of ``/api/system`` and ``/api/version``."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.claims = Claims(self._find)
        self.version_body = json.dumps(
            {
                "api": API_VERSION,
                "server": OCTOPRINT_VERSION,
                "text": f"OctoPrint {OCTOPRINT_VERSION} (sysmenu {__version__})",
            }
        ).encode()
        self.server_body = json.dumps({"version": OCTOPRINT_VERSION, "safemode": None}).encode()

    async def version(self, request: Request) -> Response:
        await self.state.identify_any(request)
        return Response(self.version_body, media_type=JSON, headers=API_HEADERS)

    async def server(self, request: Request) -> Response:
        """``GET /api/server``: Home Assistant's integration reads the version from it."""
        await self.state.identify_any(request)
        return Response(self.server_body, media_type=JSON, headers=API_HEADERS)

    async def _lister(self, request: Request) -> Grant:
        """The caller's grant if it may list anything (SYSTEM, READ, or a command it may run)."""
        _, grant = await self.state.caller(request)
        if not grant.sees_anything(self.state.catalogue.all_specs()):
            raise Forbidden(FORBIDDEN)
        return grant

    def _specs(self, request: Request, grant: Grant, source: str) -> list[dict[str, Any]]:
        base_url = self.state.proxies.base_url(request)
        return [spec.client_spec(base_url) for spec in grant.visible(self.state.catalogue.specs[source])]

    async def list_all(self, request: Request) -> Response:
        grant = await self._lister(request)
        if grant.runs_everything:  # OctoPrint's SYSTEM: the list as OctoPrint shows it
            body = self.state.catalogue.rendered(self.state.proxies.base_url(request))
            return Response(body, media_type=JSON, headers=API_HEADERS)
        return json_response({source: self._specs(request, grant, source) for source in SOURCES})

    async def list_source(self, request: Request) -> Response:
        grant = await self._lister(request)
        source = request.path_params["source"]
        if source not in SOURCES:  # told only to who may read the whole menu
            raise NotFound(f"Unknown source: {source}") if grant.reads_all else Forbidden(FORBIDDEN)
        if grant.runs_everything:
            body = self.state.catalogue.rendered(self.state.proxies.base_url(request), source)
            return Response(body, media_type=JSON, headers=API_HEADERS)
        specs = self._specs(request, grant, source)
        if not specs and not grant.reads_all:  # a list it has nothing in stays 403, as in OctoPrint
            raise Forbidden(FORBIDDEN)
        return json_response(specs)

    async def execute(self, request: Request) -> Response:
        identity, grant = await self.state.caller(request)
        source, action = request.path_params["source"], request.path_params["action"]
        return await self._execute(request, identity, grant, source, action)

    async def execute_legacy(self, request: Request) -> Response:
        """Deprecated ``POST /api/system``: runs the custom action named by ``action``
        in a JSON body, a form body or the query string, as OctoPrint does."""
        identity, grant = await self.state.caller(request)
        if not grant.can(SYSTEM) and not grant.may_run_any(self.state.catalogue.all_specs()):
            raise Forbidden(FORBIDDEN)
        action = _legacy_action(await request.body(), request)
        return await self._execute(request, identity, grant, "custom", action)

    async def _execute(
        self, request: Request, identity: Identity, grant: Grant, source: str, action: str
    ) -> Response:
        # Who may not run this is refused before anything about the command is told;
        # SYSTEM learns what OctoPrint tells it (400 for a divider, 404 for no such command).
        if not grant.may_run(source, action) and not grant.can(SYSTEM):
            raise Forbidden(FORBIDDEN)
        if action == DIVIDER:  # whatever the source, as OctoPrint answers
            raise BadRequest("Dividers cannot be executed")
        spec = self.state.catalogue.get(source, action) if source in SOURCES else None
        if spec is None:
            raise NotFound(f"Command {source}:{action} not found")
        if not grant.may_run(source, action):  # SYSTEM, but a deny names the caller
            raise Forbidden(FORBIDDEN)
        if spec.fresh_credentials and not identity.fresh:
            raise Forbidden(STALE_CREDENTIALS)
        body = await request.body()  # without arguments: accepted in any form and unused
        values = _argument_values(spec, body) if spec.arguments else {}
        invocation = Invocation.of(spec, values)  # 400 for an option-like argv value
        who = identity.who(self.state.proxies.client(request))
        wants_handle = "respond-async" in request.headers.get("prefer", "").lower()
        key = request.headers.get("idempotency-key") or None
        if key is not None and len(key) > 255:
            raise BadRequest("Idempotency-Key is longer than 255 characters")
        store = self.state.store
        if key is not None:
            previous = await self.claims.previous(who.user, key, source, action)
            if previous is not None:
                if spec.arguments and not same_values(values, previous.arguments_digest):
                    raise Unprocessable("Idempotency-Key was used before with other arguments")
                return await self._replay(request, previous, wants_handle)
        shown = {"arguments": invocation.shown} if invocation.shown is not None else {}

        async def audit(run: Run) -> None:
            await store.db.run(
                store.audit.record, "execute", who, source=source, action=action, run=run.id, **shown
            )

        runner = self.state.runner
        queue_now = spec.is_async and not wants_handle and spec.queue and runner.must_wait(spec)
        if queue_now and runner.start_later(spec, who, key, audit, invocation):  # answered at once
            return NO_CONTENT
        if key is None:
            run = await self._start(request, spec, who, None, wants_handle, invocation)
        else:
            try:
                async with self.claims.hold(who.user, key):
                    run = await self._start(request, spec, who, key, wants_handle, invocation)
            except DuplicateKey:  # recorded first by another process using the same database
                previous = await self.claims.previous(who.user, key, source, action)
                assert previous is not None
                return await self._replay(request, previous, wants_handle)
        await audit(run)
        if wants_handle:
            return self._accepted(request, run.id)
        if spec.is_async:
            return NO_CONTENT
        await run.done.wait()
        return self._outcome(run.record(), spec.ignore, spec.timeout or self.state.runner.default_timeout)

    async def _start(
        self,
        request: Request,
        spec: CommandSpec,
        who: Who,
        key: str | None,
        wants_handle: bool,
        invocation: Invocation,
    ) -> Run:
        """Start the run; a sync request that waits for a turn is dropped if its client
        leaves meanwhile (async requests and those asking for a handle run anyway)."""
        start = self.state.runner.start(spec, who, key, invocation)
        if not spec.queue or spec.is_async or wants_handle:
            return await start
        try:
            run: Run = await unless_client_leaves(request.receive, start)
        except ClientLeft:
            log.info(
                "%s:%s by %s not run: the client left while it waited", *(spec.source, spec.action, who.user)
            )
            store = self.state.store
            await store.db.run(
                store.audit.record, "execute-dropped", who, source=spec.source, action=spec.action
            )
            raise ClientDisconnect from None
        return run

    async def _find(self, user: str | None, key: str) -> RunRecord | None:
        return await self.state.store.db.run(self.state.store.runs.find_idempotent, user, key)

    async def _replay(self, request: Request, previous: RunRecord, wants_handle: bool) -> Response:
        """A retried request with a known Idempotency-Key: the first run's answer."""
        if wants_handle:
            return self._accepted(request, previous.id)
        spec = self.state.catalogue.get(previous.source, previous.action)
        if spec is not None and spec.is_async:
            return NO_CONTENT
        live = self.state.runner.running.get(previous.id)
        if live is not None:
            await live.done.wait()
        store = self.state.store
        ended = self.state.runner.unwritten.get(previous.id)  # memory has the truth until written
        record = ended.record() if ended is not None else await store.db.run(store.runs.get, previous.id)
        assert record is not None
        ignore = spec.ignore if spec is not None else False
        return self._outcome(record, ignore, self.state.runner.default_timeout)

    def _accepted(self, request: Request, run_id: int) -> Response:
        location = f"{self.state.proxies.base_url(request)}api/runs/{run_id}"
        return json_response({"id": run_id, "resource": location}, 202, {"Location": location})

    @staticmethod
    def _outcome(run: RunRecord, ignore: bool, timeout: float) -> Response:
        """No content for a run that went well (or failed with `ignore`); else 500 with
        what went wrong and the run's output."""
        state, name = run.state, f"{run.source}:{run.action}"
        if state == "ok" or (ignore and state == "failed"):
            return NO_CONTENT
        if state == "timeout":
            reason = f"timed out after {timeout:g} seconds and was killed"
        elif state == "killed":
            reason = "was killed"
        elif state == "interrupted":
            reason = "was interrupted by a server stop"
        elif run.signal is not None:
            reason = f"was ended by signal {run.signal}"
        else:
            reason = f"failed with return code {run.returncode}"
        raise CommandFailed(f"Command for {name} {reason}:\n\nSTDOUT:\n{run.stdout}\n\nSTDERR:\n{run.stderr}")


def _argument_values(spec: CommandSpec, body: bytes) -> dict[str, Value]:
    """The checked values of a request for a command with arguments: the ``arguments``
    object of a JSON body; no body (as OctoPrint's clients send) gives none."""
    data: object = {}
    if body.strip():
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            raise BadRequest('The body is not valid JSON: send {"arguments": {...}}') from None
    if not isinstance(data, dict):
        raise BadRequest('The body should be a JSON object: {"arguments": {...}}')
    return check_values(spec.arguments, data.get("arguments", {}))


def _legacy_action(body: bytes, request: Request) -> str:
    """The action of a deprecated ``POST /api/system``, found as OctoPrint finds it: in a JSON
    object body when there is one (a body that is not JSON, or is ``null``, counts as none),
    else in the query string, else in a form body."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    data: object = None
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            data = None
    if data is None:
        fields: dict[str, str] = {}
        if content_type == "application/x-www-form-urlencoded":
            fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if "action" in request.query_params:
            fields["action"] = request.query_params["action"]
        data = fields
    if not isinstance(data, dict) or "action" not in data:
        raise BadRequest("action is missing")
    action = data["action"]
    if not isinstance(action, str):  # names no command: OctoPrint looks it up and finds none
        raise NotFound(f"Command custom:{json.dumps(action)} not found")
    return action
