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


def presented_key(request: Request) -> str | None:
    """The API key of a request, as OctoPrint takes it: header, bearer token or query."""
    keys = request.headers.getlist("x-api-key")
    if len(set(keys)) > 1:
        return "\x00ambiguous"  # disagreeing duplicates: no key is believed (never matches)
    key = keys[0] if keys else None
    if not key:
        authorization = request.headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            key = token.strip()
    if not key:
        key = request.query_params.get("apikey")
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
        peer = request.client.host if request.client else None
        if self.trusts(peer):
            forwarded = request.headers.get("x-forwarded-for")
            if forwarded:
                return forwarded.split(",")[0].strip() or peer
        return peer

    def base_url(self, request: Request) -> str:
        """The absolute URL of the server's root, ending in '/', as the client sees it."""
        headers = request.headers
        # From the scope, not request.url: building a URL object costs more than the rest.
        scheme = request.scope.get("scheme", "http")
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
