"""Who is asking: API keys (header, bearer, query), proxies, permissions."""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from starlette.requests import Request

from .access import FULL, Scope
from .accounts import Accounts
from .errors import TooManyRequests
from .models import Session, User, Who
from .ratelimit import FailureLimiter
from .sessions import Sessions

# The text OctoPrint's 403 carries (Werkzeug's standard description of 403).
FORBIDDEN = (
    "You don't have the permission to access the requested resource. "
    "It is either read-protected or not readable by the server."
)
CSRF_FAILED = "CSRF token missing or wrong: reload the page"
MAX_KEY_LENGTH = 256
SESSION_COOKIE = "sysmenu_session"  # + cookie_suffix(); HttpOnly
CSRF_COOKIE = "csrf_token"  # + cookie_suffix(); OctoPrint's name, read by its JavaScript client
FRESH_WINDOW = 300.0  # a session's password check counts as fresh this long (as OctoPrint)
STALE_CREDENTIALS = (
    f"This command needs your password, checked within the last {FRESH_WINDOW / 60:g} minutes: log in again"
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Identity:
    user: User
    method: str  # "apikey", "session"
    session: Session | None = None
    scope: Scope = FULL  # a key's narrowing of what its user may do

    def who(self, client: str | None) -> Who:
        return Who(self.user.name, self.method, client)

    @property
    def fresh(self) -> bool:
        """Whether the credentials were checked recently: API keys always count as fresh."""
        if self.session is None:
            return True
        return time.time() - self.session.password_at <= FRESH_WINDOW


def cookie_suffix(base_url: str) -> str:
    """OctoPrint's cookie-name suffix for a server at `base_url` (``_P5000``, or
    ``_P443_R|prefix`` behind a path): cookies are per host, not per port, and two
    servers on one host must not overwrite each other's. OctoPrint's JavaScript client
    reads its CSRF cookie by this name."""
    parts = urlsplit(base_url)
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or (443 if parts.scheme == "https" else 80)
    path = parts.path.rstrip("/")
    return f"_P{port}" + (f"_R{path.replace('/', '|')}" if path else "")


def check_csrf(request: Request, identity: Identity) -> bool:
    """Whether a request made with a session cookie may change state: a safe method,
    or the session's CSRF token in ``X-CSRF-Token`` (a cross-site form cannot set it)."""
    if identity.session is None or request.method in SAFE_METHODS:
        return True
    token = request.headers.get("x-csrf-token", "")
    return hmac.compare_digest(token.encode("utf-8", "replace"), identity.session.csrf.encode())


AMBIGUOUS = "\x00ambiguous"  # never matches a key: NUL is not in any key


def _single(values: list[str]) -> str | None:
    """The value of a field that may be repeated; copies that disagree believe none."""
    if len(set(values)) > 1:
        return AMBIGUOUS
    return values[0] if values else None


def presented_key(request: Request) -> str | None:
    """The API key of a request, in OctoPrint's order: the ``apikey`` query parameter, then
    ``X-Api-Key``, then an ``Authorization: Bearer`` token. The first one present is the key,
    even when it is wrong and a later one is right; a place holding disagreeing copies
    (duplicated parameters, headers or bearer tokens) presents no valid key."""
    key = None
    query = request.scope.get("query_string", b"")
    # Parse the query only when it may hold a key; names are decoded as OctoPrint
    # (Werkzeug) decodes them, so ``api%6Bey`` is ``apikey`` too.
    if b"apikey" in query or b"%" in query:
        key = _single(request.query_params.getlist("apikey"))
    if not key:
        key = _single(request.headers.getlist("x-api-key"))
    if not key:
        tokens = []
        for authorization in request.headers.getlist("authorization"):
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                tokens.append(token.strip())
        key = _single(tokens)
    return key or None


def refuse_if_limited(limiter: FailureLimiter, client: str | None, what: str) -> None:
    """429 with Retry-After when `client` has had too many failed `what` lately."""
    wait = limiter.retry_after(client)
    if wait:
        limiter.refused()
        raise TooManyRequests(
            f"Too many failed {what} from this address; try again in {wait} seconds",
            headers={"Retry-After": str(wait)},
        )


async def identify(
    request: Request,
    accounts: Accounts,
    sessions: Sessions,
    limiter: FailureLimiter,
    client: str | None,
    session_cookie: Callable[[], str] | None = None,
) -> Identity | None:
    """The identity a request presents (an API key first, else the session cookie whose
    name `session_cookie` works out), or None.

    A wrong key counts as a failure of the client's address; an address with
    too many recent failures gets 429 for wrong keys until its window passes. A
    valid key is never refused for its address's failures (someone else's,
    behind the same proxy or NAT): looking a key up costs one SHA-256, and a
    256-bit key cannot be guessed, so the limit only quiets the noise.
    """
    key = presented_key(request)
    if key is None:
        token = request.cookies.get(session_cookie()) if session_cookie else None
        session = None
        if token and len(token) <= MAX_KEY_LENGTH:
            session = await sessions.db.run(sessions.get, token)
        return Identity(session.user, "session", session) if session else None
    owner = await _key_owner(accounts, key)
    if owner is None:
        refuse_if_limited(limiter, client, "attempts")
        limiter.fail(client)
        return None
    return Identity(owner[0], "apikey", scope=owner[1])


async def _key_owner(accounts: Accounts, key: str | None) -> tuple[User, Scope] | None:
    if not key or len(key) > MAX_KEY_LENGTH:
        return None
    if not accounts.keys_current():  # else the cache answers without the database thread
        await accounts.db.run(accounts.load_keys)
    return accounts.cached_key_owner(key)


async def still_valid(request: Request, accounts: Accounts, sessions: Sessions, identity: Identity) -> bool:
    """Whether the credential behind `identity` still stands (a key not revoked, a
    session not ended, a user not removed), without counting failures."""
    if identity.session is not None:
        return await sessions.db.run(sessions.get, identity.session.token) is not None
    return await _key_owner(accounts, presented_key(request)) is not None


@lru_cache(maxsize=1024)
def forwarded_address(hop: str) -> str:
    """The address of an ``X-Forwarded-For`` entry, which some proxies write with a
    port (``198.51.100.7:4711``, ``[2001:db8::1]:4711``): a client rotating its
    ports must not count as many addresses. Anything else is kept as written."""
    hop = hop.strip()
    if hop.startswith("["):
        inside = hop[1:].partition("]")[0]
        return inside or hop
    host, colon, port = hop.rpartition(":")
    if colon and host.count(":") == 0 and port.isdigit():
        return host
    return hop


class Proxies:
    """Which peers may set X-Forwarded-* and X-Script-Name."""

    def __init__(self, networks: list[str]) -> None:
        self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)
        self.trusts = lru_cache(maxsize=256)(self._trusts)

    def _trusts(self, host: str | None) -> bool:
        if not host:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self.networks)

    def client(self, request: Request) -> str | None:
        """The client's address: the peer's, or behind trusted proxies the nearest
        address in X-Forwarded-For that is not a trusted proxy. Entries left of it
        were written by the client itself (a proxy appends to what it received), so
        believing the leftmost would let a client pick its own address for the
        key-failure limit and the audit log."""
        peer = request.client.host if request.client else None
        if self.trusts(peer):
            hops = [
                forwarded_address(hop)
                for value in request.headers.getlist("x-forwarded-for")
                for hop in value.split(",")
                if hop.strip()
            ]
            for hop in reversed(hops):
                if not self.trusts(hop):
                    return hop
            if hops:
                return hops[0]
        return peer

    def base_url(self, request: Request) -> str:
        """The absolute URL of the server's root, ending in '/', as the client sees it
        (worked out once per request: the cookie names and the resources need it)."""
        cached: str | None = request.scope.get("sysmenu.base_url")
        if cached is not None:
            return cached
        headers = request.headers
        # From the scope, not request.url: building a URL object costs more than the rest.
        scheme = request.scope.get("scheme", "http")
        host = headers.get("host") or f"{request.url.hostname}:{request.url.port}"
        prefix = ""
        peer = request.client.host if request.client else None
        if self.trusts(peer):
            forwarded = headers.get("x-forwarded-proto") or headers.get("x-scheme") or scheme
            scheme = forwarded.split(",")[0].strip() or scheme
            host = headers.get("x-forwarded-host", host).split(",")[0].strip() or host
            prefix = self.prefix(request) or ""
        url = request.scope["sysmenu.base_url"] = f"{scheme}://{host}{prefix}/"
        return url

    def prefix(self, request: Request) -> str | None:
        """The path prefix a trusted proxy announces (``X-Script-Name``, else
        ``X-Forwarded-Prefix``), as ``/name`` without a trailing slash; else None."""
        if "sysmenu.prefix" in request.scope:
            cached: str | None = request.scope["sysmenu.prefix"]
            return cached
        request.scope["sysmenu.prefix"] = prefix = self._prefix(request)
        return prefix

    def _prefix(self, request: Request) -> str | None:
        peer = request.client.host if request.client else None
        if not self.trusts(peer):
            return None
        headers = request.headers
        prefix = headers.get("x-script-name") or headers.get("x-forwarded-prefix") or ""
        prefix = prefix.split(",")[0].strip().rstrip("/")
        if prefix and not prefix.startswith("/"):
            prefix = "/" + prefix
        return prefix or None
