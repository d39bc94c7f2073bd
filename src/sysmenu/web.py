"""The System menu page and its browser sessions: login, logout, current user, assets."""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from . import auth
from .access import SYSTEM, Grant
from .catalogue import CommandSpec
from .errors import BadRequest, Forbidden, NotFound, UnsupportedMediaType
from .models import Session, User, Who
from .octoprint_compat import user_record
from .passwords import decoy_hash
from .responses import json_response
from .sessions import SESSION_LIFETIME

if TYPE_CHECKING:
    from .state import State

WEB = Path(__file__).parent / "web"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# The page loads nothing but its own files, and no one may frame it.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
WRONG_LOGIN = "Wrong user name or password"
UNKNOWN_USER = "(unknown user)"  # what the audit records for a name no user has


class Asset:
    """One file of the page, read once, with its gzip form and validator."""

    def __init__(self, path: Path) -> None:
        self.body = path.read_bytes()
        self.gzipped = gzip.compress(self.body, 9, mtime=0)
        self.etag = '"' + hashlib.sha256(self.body).hexdigest()[:20] + '"'
        self.media_type = TYPES.get(path.suffix, "application/octet-stream")

    def response(self, request: Request) -> Response:
        headers = dict(PAGE_HEADERS, ETag=self.etag, Vary="Accept-Encoding")
        if self.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        body = self.body
        if "gzip" in request.headers.get("accept-encoding", "") and len(self.gzipped) < len(body):
            body, headers["Content-Encoding"] = self.gzipped, "gzip"
        return Response(body, media_type=self.media_type, headers=headers)


@cache
def _assets() -> dict[str, Asset]:
    return {p.name: Asset(p) for p in WEB.iterdir() if p.is_file() and p.suffix in TYPES}


def user_json(user: User, grant: Grant, specs: list[CommandSpec]) -> dict[str, Any]:
    """The user, and what the page may offer them: the commands they may run, whether they
    read the history (all of it, or of what they may run), kill any run, read the audit log."""
    return {
        "name": user.name,
        "groups": list(user.groups),
        "permissions": sorted(grant.permissions),
        "may": {
            "run": grant.runnable(specs),
            "history": grant.sees_anything(specs),
            "kill_any": grant.can(SYSTEM),
            "audit": grant.may_audit,
        },
    }


class WebUi:
    def __init__(self, state: State) -> None:
        self.state = state

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.page, methods=["GET", "HEAD"]),
            Route("/login", self.page, methods=["GET", "HEAD"]),  # OctoPrint's login page path
            Route("/static/{name}", self.asset, methods=["GET", "HEAD"]),
            Route("/api/login", self.login, methods=["POST"]),
            Route("/api/logout", self.logout, methods=["POST"]),
            Route("/api/currentuser", self.current_user, methods=["GET"]),
        ]

    async def page(self, request: Request) -> Response:
        return _assets()["index.html"].response(request)

    async def asset(self, request: Request) -> Response:
        asset = _assets().get(request.path_params["name"])
        if asset is None or request.path_params["name"] == "index.html":
            raise NotFound("Not Found")
        return asset.response(request)

    def _user_json(self, identity: auth.Identity) -> dict[str, Any]:
        return user_json(identity.user, self.state.grant(identity), self.state.catalogue.all_specs())

    def _session_json(self, session: Session) -> dict[str, Any]:
        return self._user_json(auth.Identity(session.user, "session", session)) | {
            "csrf_token": session.csrf,
            "fresh_until": session.password_at + auth.FRESH_WINDOW,
        }

    async def login(self, request: Request) -> Response:
        """``POST /api/login`` with ``{"user", "pass"}``: a new session (cookie) for that
        user. Logging in again with a session renews its password check ("fresh
        credentials"). JSON only: a cross-site form cannot send it without CORS."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise UnsupportedMediaType("Expected content type application/json")
        try:
            data = json.loads(await request.body())
        except ValueError:
            raise BadRequest("Malformed JSON body in request") from None
        if not isinstance(data, dict):
            raise BadRequest("Expected a JSON object")
        if data.get("passive") and "user" not in data and "pass" not in data:
            # Who the key (or session) is, as OctoPrint's passive login answers it.
            return json_response(user_record(await self.state.identify_any(request)))
        name, password = data.get("user"), data.get("pass")
        if not isinstance(name, str) or not isinstance(password, str) or not name:
            raise BadRequest("user and pass are required")
        client = self.state.proxies.client(request)
        store = self.state.store
        user = None
        if len(name) <= 256 and len(password) <= 1024:
            user = await store.db.run(store.accounts.get_user, name)
        stored = await store.db.run(store.accounts.password_hash, name) if user else None
        ok = await self.state.password_checks.check(client, name, stored or decoy_hash(), password[:1024])
        if user is None or stored is None or not ok:
            # The typed name only if it is a user's: people type passwords into it.
            who = Who(user.name if user else UNKNOWN_USER, "password", client)
            await store.db.run(store.audit.record, "login_failed", who)
            raise Forbidden(WRONG_LOGIN)
        cookie_name = self.state.session_cookie(request)
        replaces = request.cookies.get(cookie_name)
        session = await store.db.run(store.sessions.create, user, client, replaces)
        await store.db.run(store.audit.record, "login", Who(user.name, "password", client))
        response = json_response(self._session_json(session))
        self._set_cookies(request, response, session)
        return response

    def _set_cookies(self, request: Request, response: Response, session: Session | None) -> None:
        base = self.state.proxies.base_url(request)
        path = base.split("://", 1)[1].partition("/")[2]
        secure = base.startswith("https:")
        suffix = auth.cookie_suffix(base)
        max_age = int(SESSION_LIFETIME) if session else 0
        cookies = [
            (auth.SESSION_COOKIE, session.token if session else "", True),
            # Readable by the page's scripts (OctoPrint's JavaScript client sends it back as
            # X-CSRF-Token); useless to another site, which can neither read it nor set headers.
            (auth.CSRF_COOKIE, session.csrf if session else "", False),
        ]
        for name, value, httponly in cookies:
            response.set_cookie(
                name + suffix,
                value,
                max_age=max_age,
                path="/" + path,
                secure=secure,
                httponly=httponly,
                samesite="strict",
            )

    async def logout(self, request: Request) -> Response:
        identity = await self.state.identify_any(request)
        if identity.session is not None:
            store = self.state.store
            await store.db.run(store.sessions.end, identity.session.token)
            who = identity.who(self.state.proxies.client(request))
            await store.db.run(store.audit.record, "logout", who)
        # 200 with a body, as OctoPrint answers: who the client is now (nobody).
        response = json_response({"name": None, "groups": [], "permissions": []})
        self._set_cookies(request, response, None)
        return response

    async def current_user(self, request: Request) -> Response:
        """Who the request is: a session's user with its CSRF token and how long its
        password check stays fresh, a key's user, or ``{"name": null}``."""
        try:
            identity = await self.state.identify_any(request)
        except Forbidden:
            return json_response({"name": None, "groups": [], "permissions": []})
        if identity.session is not None:
            return json_response(self._session_json(identity.session))
        return json_response(self._user_json(identity) | {"fresh_until": time.time() + auth.FRESH_WINDOW})
