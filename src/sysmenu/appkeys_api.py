"""The HTTP side of the Application Keys flow (OctoPrint's ``/plugin/appkeys/...`` paths)."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .access import ADMIN
from .appkeys import MAX_APP_NAME, AppKeys, RequestRefused
from .auth import STALE_CREDENTIALS
from .errors import BadRequest, Forbidden, NotFound, TooManyRequests
from .models import Who
from .responses import NO_CONTENT, json_response

if TYPE_CHECKING:
    from .state import State

log = logging.getLogger("sysmenu")

UNKNOWN_REQUEST = "No such pending key request (it was decided, or it expired)"
_TRUE = (True, 1, "true", "yes", "y", "1", "on")


def _json_body(body: bytes) -> dict[str, Any]:
    """A JSON object body; OctoPrint reads these bodies whatever their content type."""
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise BadRequest("Expected a JSON object")
    return data


class AppKeysApi:
    def __init__(self, state: State) -> None:
        self.state = state
        self.keys = AppKeys(state.store)
        self.db = state.store.db  # every call of `keys` runs on the database's thread

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/plugin/appkeys/probe", self.probe, methods=["GET"]),
            Route("/plugin/appkeys/request", self.request, methods=["POST"]),
            Route("/plugin/appkeys/request/{app_token}", self.poll, methods=["GET"]),
            Route("/plugin/appkeys/decision/{user_token}", self.decision, methods=["POST"]),
            Route("/api/plugin/appkeys", self.listing, methods=["GET"]),
        ]

    async def probe(self, request: Request) -> Response:
        """The flow is supported: 204, to anyone (an app has no key yet)."""
        return NO_CONTENT

    async def request(self, request: Request) -> Response:
        data = _json_body(await request.body())
        app = data.get("app")
        if not isinstance(app, str) or not app.strip():
            raise BadRequest("app (the name of the application) is required")
        if len(app) > MAX_APP_NAME:
            raise BadRequest(f"app is longer than {MAX_APP_NAME} characters")
        user = data.get("user")
        if user is not None and not isinstance(user, str):
            raise BadRequest("user must be a string")
        user = user or None
        client = self.state.proxies.client(request)
        try:
            app_token, pending = await self.db.run(self.keys.request, app.strip(), user, client)
        except RequestRefused as exc:
            raise TooManyRequests(str(exc), headers={"Retry-After": "10"}) from None
        log.info("key request %s from %s for app %r (user %s)", pending.id, client, app, user or "any")
        audit = self.state.store.audit.record
        await self.db.run(
            audit, "appkey_request", Who(user, None, client), app=pending.app, request=pending.id
        )
        base = self.state.proxies.base_url(request)
        poll = f"{base}plugin/appkeys/request/{app_token}"
        body = {"app_token": app_token, "auth_dialog": base + (f"?user={user}" if user else "")}
        return json_response(body, 201, {"Location": poll})

    async def poll(self, request: Request) -> Response:
        state, key = await self.db.run(self.keys.poll, request.path_params["app_token"])
        if state == "pending":
            return json_response({"message": "Waiting for someone to approve or deny the request"}, 202)
        if state == "approved":
            return json_response({"api_key": key})
        raise NotFound(UNKNOWN_REQUEST)

    async def decision(self, request: Request) -> Response:
        """A decision: by the user the request names, or by an admin when it names none.
        A session needs its CSRF token and a fresh password check (OctoPrint asks for
        recent credentials here)."""
        identity = await self.state.identify_any(request)
        data = _json_body(await request.body())
        if "decision" not in data:
            raise BadRequest("decision is required (true to approve, false to deny)")
        if not identity.fresh:
            raise Forbidden(STALE_CREDENTIALS)
        approve = data["decision"] in _TRUE
        pending = await self.db.run(self.keys.find, request.path_params["user_token"])
        if pending is None:
            raise NotFound(UNKNOWN_REQUEST)
        user = identity.user
        if pending.user is None and not user.can(ADMIN):
            raise Forbidden("Only an admin may decide a key request that names no user")
        if pending.user not in (None, user.name):
            raise NotFound(UNKNOWN_REQUEST)  # another user's: as if it did not exist
        if not await self.db.run(self.keys.decide, pending, approve, identity.user.name):
            raise NotFound(UNKNOWN_REQUEST)
        client = self.state.proxies.client(request)
        event = "appkey_approved" if approve else "appkey_denied"
        who = identity.who(client)
        audit = self.state.store.audit.record
        await self.db.run(
            audit, event, who, app=pending.app, request=pending.id, requested_from=pending.client
        )
        return NO_CONTENT

    async def listing(self, request: Request) -> Response:
        """The caller's keys, and the pending requests the caller may decide (the page
        polls this to prompt)."""
        identity = await self.state.identify_any(request)
        user = identity.user
        owned = await self.db.run(self.state.store.accounts.list_keys, user.name)
        keys = [
            {"app_id": k.name, "user_id": k.user, "created": k.created} for k in owned if k.revoked is None
        ]
        pending = await self.db.run(self.keys.decidable, user.name, user.can(ADMIN))
        return json_response({"keys": keys, "pending": {p.user_token: p.external() for p in pending}})
