"""Who is asking: API keys (header, bearer, query), proxies, permissions."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache

from starlette.requests import Request

from .errors import TooManyRequests
from .ratelimit import FailureLimiter
from .runner import Who
from .store import Store, User

FORBIDDEN = "You don't have the permission to access the requested resource."
MAX_KEY_LENGTH = 256


@dataclass(frozen=True, slots=True)
class Identity:
    user: User
    method: str  # "apikey", "session"

    def who(self, client: str | None) -> Who:
        return Who(self.user.name, self.method, client)


AMBIGUOUS = "\x00ambiguous"  # never matches a key: NUL is not in any key


def _single(values: list[str]) -> str | None:
    """The value of a field that may be repeated; copies that disagree believe none."""
    if len(set(values)) > 1:
        return AMBIGUOUS
    return values[0] if values else None


def presented_key(request: Request) -> str | None:
    """The API key of a request, as OctoPrint takes it: header, bearer token or query.

    The first of those places that holds a key is the one believed (a wrong header is
    not rescued by a right query key); a place that holds disagreeing copies
    (duplicated headers or ``apikey`` parameters) presents no valid key.
    """
    key = _single(request.headers.getlist("x-api-key"))
    if not key:
        tokens = []
        for authorization in request.headers.getlist("authorization"):
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                tokens.append(token.strip())
        key = _single(tokens)
    if not key:
        key = _single(request.query_params.getlist("apikey"))
    return key or None


def identify(request: Request, store: Store, limiter: FailureLimiter, client: str | None) -> Identity | None:
    """The identity a request presents, or None.

    A wrong key counts as a failure of the client's address; an address with
    too many recent failures gets 429 for any key until its window passes.
    """
    key = presented_key(request)
    if key is None:
        return None
    wait = limiter.retry_after(client)
    if wait:
        raise TooManyRequests(
            f"Too many failed attempts from this address; try again in {wait} seconds",
            headers={"Retry-After": str(wait)},
        )
    user = store.user_for_key(key) if len(key) <= MAX_KEY_LENGTH else None
    if user is None:
        limiter.fail(client)
        return None
    return Identity(user, "apikey")


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
                hop.strip()
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
        """The absolute URL of the server's root, ending in '/', as the client sees it."""
        headers = request.headers
        scheme = request.url.scheme
        host = headers.get("host") or f"{request.url.hostname}:{request.url.port}"
        prefix = ""
        peer = request.client.host if request.client else None
        if self.trusts(peer):
            scheme = headers.get("x-forwarded-proto", scheme).split(",")[0].strip() or scheme
            host = headers.get("x-forwarded-host", host).split(",")[0].strip() or host
            prefix = headers.get("x-script-name") or headers.get("x-forwarded-prefix") or ""
            prefix = prefix.split(",")[0].strip().rstrip("/")
            if prefix and not prefix.startswith("/"):
                prefix = "/" + prefix
        return f"{scheme}://{host}{prefix}/"
