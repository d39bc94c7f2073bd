"""The OctoPrint-compatible endpoints: System API and the version call clients make first."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from . import __version__
from .catalogue import DIVIDER, SOURCES
from .errors import BadRequest, CommandFailed, Forbidden, NotFound
from .runner import Run

if TYPE_CHECKING:
    from .app import Sysmenu

API_VERSION = "0.1"
OCTOPRINT_VERSION = "1.11.8"  # the OctoPrint release whose API sysmenu answers as
JSON = "application/json"
NO_CONTENT = Response(status_code=204)
STALE_CREDENTIALS = "This command needs your password, checked within the last 5 minutes: log in again"


def json_response(data: Any, status_code: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(data, ensure_ascii=False).encode()
    return Response(body, status_code=status_code, media_type=JSON, headers=headers)


class SystemApi:
    """Handlers of ``/api/system`` and ``/api/version``."""

    def __init__(self, app: Sysmenu) -> None:
        self.app = app
        self.version_body = json.dumps(
            {
                "api": API_VERSION,
                "server": OCTOPRINT_VERSION,
                "text": f"OctoPrint {OCTOPRINT_VERSION} (sysmenu {__version__})",
            }
        ).encode()
        self.server_body = json.dumps({"version": OCTOPRINT_VERSION, "safemode": None}).encode()

    async def version(self, request: Request) -> Response:
        self.app.identify_any(request)
        return Response(self.version_body, media_type=JSON)

    async def server(self, request: Request) -> Response:
        """``GET /api/server``: Home Assistant's integration reads the version from it."""
        self.app.identify_any(request)
        return Response(self.server_body, media_type=JSON)

    async def list_all(self, request: Request) -> Response:
        self.app.require(request, "SYSTEM")
        body = self.app.catalogue.rendered(self.app.proxies.base_url(request))
        return Response(body, media_type=JSON)

    async def list_source(self, request: Request) -> Response:
        self.app.require(request, "SYSTEM")
        source = request.path_params["source"]
        if source not in SOURCES:
            raise NotFound(f"Unknown source: {source}")
        body = self.app.catalogue.rendered(self.app.proxies.base_url(request), source)
        return Response(body, media_type=JSON)

    async def execute(self, request: Request) -> Response:
        identity = self.app.require(request, "SYSTEM")
        source, action = request.path_params["source"], request.path_params["action"]
        return await self._execute(request, identity, source, action)

    async def execute_legacy(self, request: Request) -> Response:
        """Deprecated ``POST /api/system``: runs the custom action named by ``action``
        in a JSON body, a form body or the query string, as OctoPrint does."""
        identity = self.app.require(request, "SYSTEM")
        action = _legacy_action(await request.body(), request)
        return await self._execute(request, identity, "custom", action)

    async def _execute(self, request: Request, identity: Any, source: str, action: str) -> Response:
        if action == DIVIDER:  # whatever the source, as OctoPrint answers
            raise BadRequest("Dividers cannot be executed")
        spec = self.app.catalogue.get(source, action) if source in SOURCES else None
        if spec is None:
            raise NotFound(f"Command {source}:{action} not found")
        if spec.fresh_credentials and not identity.fresh:
            raise Forbidden(STALE_CREDENTIALS)
        await request.body()  # accepted in any form (none, {}, empty octet-stream) and unused
        who = identity.who(self.app.proxies.client(request))
        wants_handle = "respond-async" in request.headers.get("prefer", "").lower()
        key = request.headers.get("idempotency-key") or None
        if key is not None and len(key) > 255:
            raise BadRequest("Idempotency-Key is longer than 255 characters")
        previous = self.app.store.find_idempotent(who.user, key) if key else None
        if previous is not None:
            return await self._replay(request, previous, wants_handle)

        def audit(run: Run) -> None:
            self.app.store.audit(
                "execute", who.user, who.auth, who.client, source=source, action=action, run=run.id
            )

        if spec.is_async and not wants_handle and spec.queue and self.app.runner.busy(spec):
            self.app.runner.start_later(spec, who, key, audit)  # queued: answered at once
            return NO_CONTENT
        run = await self.app.runner.start(spec, who, key)
        audit(run)
        if wants_handle:
            return self._accepted(request, run.id)
        if spec.is_async:
            return NO_CONTENT
        await run.done.wait()
        return self._outcome(
            run.spec.ignore,
            run.state,
            run.returncode,
            run.signal,
            run.stdout.text(),
            run.stderr.text(),
            f"{source}:{action}",
            run.spec.timeout or self.app.runner.default_timeout,
        )

    async def _replay(self, request: Request, previous: dict[str, Any], wants_handle: bool) -> Response:
        """A retried request with a known Idempotency-Key: the first run's answer."""
        if wants_handle:
            return self._accepted(request, previous["id"])
        spec = self.app.catalogue.get(previous["source"], previous["action"])
        if spec is not None and spec.is_async:
            return NO_CONTENT
        live: Run | None = self.app.runner.running.get(previous["id"])
        if live is not None:
            await live.done.wait()
        row = self.app.store.get_run(previous["id"])
        assert row is not None
        ignore = spec.ignore if spec is not None else False
        return self._outcome(
            ignore,
            row["state"],
            row["returncode"],
            row["signal"],
            row["stdout"],
            row["stderr"],
            f"{row['source']}:{row['action']}",
            self.app.runner.default_timeout,
        )

    def _accepted(self, request: Request, run_id: int) -> Response:
        location = f"{self.app.proxies.base_url(request)}api/runs/{run_id}"
        return json_response({"id": run_id, "resource": location}, 202, {"Location": location})

    @staticmethod
    def _outcome(
        ignore: bool,
        state: str,
        returncode: int | None,
        signal: int | None,
        stdout: str,
        stderr: str,
        name: str,
        timeout: float,
    ) -> Response:
        if state == "ok" or (ignore and state == "failed"):
            return NO_CONTENT
        if state == "timeout":
            reason = f"timed out after {timeout:g} seconds and was killed"
        elif state == "killed":
            reason = "was killed"
        elif state == "interrupted":
            reason = "was interrupted by a server stop"
        elif signal is not None:
            reason = f"was ended by signal {signal}"
        else:
            reason = f"failed with return code {returncode}"
        raise CommandFailed(f"Command for {name} {reason}:\n\nSTDOUT:\n{stdout}\n\nSTDERR:\n{stderr}")


def _legacy_action(body: bytes, request: Request) -> str:
    """The action of a deprecated ``POST /api/system``, found as OctoPrint finds it: in a JSON
    object body when there is one (a body that is not JSON, or is ``null``, counts as none),
    else in the query string, else in a form body."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    data: Any = None
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            data = json.loads(body)
        except ValueError:
            data = None
    if data is None:
        data = {}
        if content_type == "application/x-www-form-urlencoded":
            data = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if "action" in request.query_params:
            data["action"] = request.query_params["action"]
    if not isinstance(data, dict) or "action" not in data:
        raise BadRequest("action is missing")
    action = data["action"]
    if not isinstance(action, str):  # names no command: OctoPrint looks it up and finds none
        raise NotFound(f"Command custom:{json.dumps(action)} not found")
    return action
