"""The Host allow-list: a defence against DNS rebinding.

A web page the admin visits can point its own name at 127.0.0.1 (DNS rebinding) and
then talk to sysmenu as a same-origin page would, sending ``Host: evil.example``. A
server that answers only to the names it is known by refuses such requests.

The rule, shaped so that no working set-up breaks:

- listening on loopback only (the default): the Host must be a loopback name or
  address (``localhost``, ``*.localhost``, ``127.x.x.x``, ``[::1]``) or be listed in
  ``sysmenu.allowed_hosts`` (the name a local reverse proxy passes on);
- ``allowed_hosts`` set: enforced the same way on every listening address;
- listening beyond loopback without ``allowed_hosts``: any Host is accepted (LAN
  set-ups reach the machine by names sysmenu cannot know), and the start-up log says so.

A request without a Host header (HTTP/1.0) comes from no browser and is not checked.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import lru_cache

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import BadRequest

SETTING = "sysmenu.allowed_hosts"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def host_name(host: str) -> str:
    """The name of a Host header's value: lower case, without port or IPv6 brackets."""
    host = host.strip().lower().rstrip(".")
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def is_loopback(name: str) -> bool:
    """Whether `name` (without port) is a loopback name or address."""
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def local_url(host: str, port: int) -> str:
    """How this machine reaches a server listening on `host`: a wildcard address on
    loopback (of its family), an IPv6 address in brackets."""
    reached = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{reached}]:{port}" if ":" in reached else f"http://{reached}:{port}"


def listens_on_loopback_only(hosts: list[str]) -> bool:
    """Whether every address in `hosts` (what sysmenu binds to) is a loopback one."""
    return bool(hosts) and all(is_loopback(host_name(h) if h.startswith("[") else h.lower()) for h in hosts)


class HostCheck:
    """Which Host values a server listening on `listen` accepts (see the module's text).

    Entries of `allowed` are names or addresses (``printer.lan``, ``192.168.1.20``),
    ``.example.org`` for that domain and every name under it, or ``*`` for any Host.
    """

    def __init__(self, listen: list[str], allowed: list[str] | None) -> None:
        self.allowed = [host_name(a) if a != "*" else a for a in allowed or []]
        self.enforced = bool(self.allowed) or listens_on_loopback_only(listen)
        self.any = "*" in self.allowed
        self.allows = lru_cache(maxsize=256)(self._allows)

    def _allows(self, host: str | None) -> bool:
        if not self.enforced or self.any or host is None:
            return True
        name = host_name(host)
        if is_loopback(name):
            return True
        return any(
            name == a or (a.startswith(".") and (name.endswith(a) or name == a[1:])) for a in self.allowed
        )

    def refusal(self, host: str) -> str:
        shown = host if len(host) <= 100 else host[:100] + "..."
        return (
            f"Host {shown!r} is not one this server answers to: add it to {SETTING} "
            "(see docs/security.md, DNS rebinding)"
        )


def open_to_rebinding(check: HostCheck, listen: list[str]) -> str | None:
    """The start-up warning for a server that answers any Host beyond loopback, or None."""
    if check.enforced:
        return None
    return (
        f"listening on {', '.join(listen)} beyond loopback without {SETTING}: any Host header is "
        "accepted, so a web page can reach sysmenu by DNS rebinding; list the names and "
        f"addresses it is reached by in {SETTING} (docs/security.md)"
    )


class HostGuard:
    """ASGI middleware: 400 for a Host the `HostCheck` (looked up per request) refuses."""

    def __init__(self, app: ASGIApp, check: Callable[[], HostCheck]) -> None:
        self.app = app
        self.check = check  # the HostCheck in force (a config reload replaces it)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            check = self.check()
            host = None
            for name, value in scope["headers"]:
                if name == b"host":
                    host = value.decode("latin-1")
                    break
            if not check.allows(host):
                from .responses import error_response

                assert host is not None
                await error_response(BadRequest(check.refusal(host)))(scope, receive, send)
                return
        await self.app(scope, receive, send)
