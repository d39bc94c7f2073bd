"""``GET /api/audit``: the audit log, for admins, filtered and paged newest first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .access import ADMIN
from .audit import MAX_AUDIT_PAGE
from .database import MAX_ID
from .params import int_param, time_param
from .responses import json_response

if TYPE_CHECKING:
    from .state import State


class AuditApi:
    def __init__(self, state: State) -> None:
        self.state = state

    def routes(self) -> list[BaseRoute]:
        return [Route("/api/audit", self.entries, methods=["GET"])]

    async def entries(self, request: Request) -> Response:
        """Entries newest first: `since`/`until` (times as `timefilter` reads them), `user`,
        `event` (one or several, comma-separated), `limit`, `before` (an id, to page back)."""
        await self.state.require(request, ADMIN)
        params = request.query_params
        limit = int_param(request, "limit", 100, 1, MAX_AUDIT_PAGE)
        assert limit is not None
        events = [e.strip() for e in params.get("event", "").split(",") if e.strip()]
        store = self.state.store
        entries = await store.db.run(
            store.audit.query,
            since=time_param(request, "since"),
            until=time_param(request, "until"),
            user=params.get("user"),
            events=events,
            before=int_param(request, "before", None, 1, MAX_ID),
            limit=limit,
        )
        page: dict[str, Any] = {"entries": entries}
        if len(entries) == limit:
            page["next"] = str(request.url.include_query_params(before=entries[-1]["id"]))
        return json_response(page)
