"""What one running server holds (config, catalogue, store, runner, limiters) and
the identity checks every view makes. Views get it as ``self.state``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from . import auth
from .access import SYSTEM, Grant, Policy
from .catalogue import Catalogue
from .config import Config, check_access, replace
from .connections import ConnectionCaps
from .errors import Forbidden
from .health import LoopMonitor
from .hosts import HostCheck
from .logins import PasswordChecks
from .metrics import Metrics
from .ratelimit import FailureLimiter
from .runner import Runner
from .settings import RESTART_KEYS
from .store import DATABASE_FILE, Store

log = logging.getLogger("sysmenu")


@dataclass
class ConfigState:
    """What the status endpoint says of the config."""

    source: str
    loaded: float
    error: str | None = None
    error_at: float | None = None
    pending_restart: dict[str, object] = field(default_factory=dict)  # restart-only keys changed


class State:
    """Everything one running server holds: config, catalogue, store, runner."""

    def __init__(self, config: Config, store: Store | None = None) -> None:
        self.store = store or Store(config.data_dir() / DATABASE_FILE)
        self.runner = Runner.from_settings(self.store.runs, config.sysmenu)
        self.config_state = ConfigState(config.source, time.time())
        self.metrics = Metrics()
        self.runner.observers.append(self.metrics)
        self.monitor = LoopMonitor()
        self.config = config
        self.config_listeners: list[Callable[[], None]] = []  # told after a config is put in force
        settings = config.sysmenu
        # Made once and reconfigured on reload: a reload must not clear the lockouts.
        limit, window = settings.key_failure_limit, settings.key_failure_window
        self.key_failures = FailureLimiter(limit, window, observer=self.metrics.limiter_observer("apikey"))
        self.password_checks = PasswordChecks(limit, window, self.metrics.limiter_observer("password"))
        self.connection_caps = ConnectionCaps(settings.max_connections, 0, [])
        self.listen = [settings.host]  # the addresses served on (serve --host)
        self.apply(config)

    def listen_on(self, hosts: list[str]) -> None:
        """The addresses the server listens on (for the Host check)."""
        self.listen = hosts
        self.hosts = HostCheck(self.listen, self.config.sysmenu.allowed_hosts)

    def apply(self, config: Config) -> None:
        """Put `config` in force. Address, port and data dir keep their start-up values
        (they need a restart); runs in progress keep the spec they started with."""
        fixed = {k: getattr(self.config.sysmenu, k) for k in RESTART_KEYS}  # see ConfigWatcher
        for warning in config.warnings:
            log.warning("config: %s", warning)
        settings = replace(config.sysmenu, **fixed)
        self.config = replace(config, sysmenu=settings)
        self.catalogue = Catalogue(self.config)
        self.policy = Policy(settings.groups, self.config.access_rules())
        self.runner.configure(settings)
        self.proxies = auth.Proxies(settings.trusted_proxies)
        self.key_failures.configure(settings.key_failure_limit, settings.key_failure_window)
        self.password_checks.configure(settings.key_failure_limit, settings.key_failure_window)
        exempt = settings.connection_cap_exempt
        self.connection_caps.configure(
            settings.max_connections,
            settings.max_connections_per_address,
            settings.trusted_proxies if exempt is None else exempt,
        )
        for listener in self.config_listeners:
            listener()
        self.hosts = HostCheck(self.listen, settings.allowed_hosts)

    def limiters(self) -> dict[str, FailureLimiter]:
        """The failure limiters by name (handed over to the next server process)."""
        checks = self.password_checks
        return {
            "apikey": self.key_failures,
            "password": checks.by_name,
            "password_address": checks.by_address,
        }

    async def authorize_metrics(self, request: Request) -> None:
        """``GET /metrics``: open when configured so, else a caller with SYSTEM."""
        if not self.config.sysmenu.metrics_open:
            await self.require(request, SYSTEM)

    async def identify_any(self, request: Request) -> auth.Identity:
        """Any valid identity, whatever its permissions; else 403 (never 401: clients
        such as pyoctoprintapi re-authenticate on 403 only)."""
        identity = await auth.identify(
            request,
            self.store.accounts,
            self.store.sessions,
            self.key_failures,
            self.proxies.client(request),
            lambda: self.session_cookie(request),  # only worked out when no key is given
        )
        if identity is None:
            raise Forbidden(auth.FORBIDDEN)
        if not auth.check_csrf(request, identity):
            raise Forbidden(auth.CSRF_FAILED)
        return identity

    def session_cookie(self, request: Request) -> str:
        return auth.SESSION_COOKIE + auth.cookie_suffix(self.proxies.base_url(request))

    def grant(self, identity: auth.Identity) -> Grant:
        """What `identity` may do under the rules in force: its groups' permissions (as
        built in, in ``sysmenu.groups`` or in the database), narrowed by a key's scope."""
        user = identity.user
        return self.policy.grant(user.name, user.groups, identity.scope, user.permissions)

    async def caller(self, request: Request) -> tuple[auth.Identity, Grant]:
        """The caller's identity (else 403) and what it may do."""
        identity = await self.identify_any(request)
        return identity, self.grant(identity)

    async def require(self, request: Request, permission: str) -> auth.Identity:
        """The caller's identity if it holds `permission` (ADMIN, SYSTEM, READ); else 403."""
        identity, grant = await self.caller(request)
        if not grant.can(permission):
            raise Forbidden(auth.FORBIDDEN)
        return identity

    def check_access(self, config: Config) -> None:
        """ConfigError when a rule of `config` names no known user or group (SQL: call it
        on the database thread)."""
        accounts = self.store.accounts
        check_access(config, [u.name for u in accounts.list_users()], list(accounts.list_groups()))
