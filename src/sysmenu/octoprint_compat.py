"""The no-printer endpoints OctoPrint client programs call at start-up.

sysmenu runs a headless machine: there is no printer, no serial port, no job. These
handlers answer as OctoPrint 1.11.8 answers when no printer is connected, in its shapes
and status codes, so that Home Assistant, octoprint-cli, OctoDash and OctoScreen get
through their start-up and reach the System menu. Every handler checks the credentials
first (403 for a missing or wrong key, as OctoPrint does), then gives the no-printer
answer. Where OctoPrint's answer would hold something sysmenu does not keep (the
plaintext key of a passive login) it is left out; docs/compatibility.md lists each
difference.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from . import OCTOPRINT_VERSION, __version__, auth
from .access import ADMIN, SYSTEM
from .errors import BadRequest, Conflict, UnsupportedMediaType
from .hostinfo import lan_address
from .responses import NO_CONTENT, json_response

if TYPE_CHECKING:
    from .state import State

NOT_OPERATIONAL = "No printer is connected: the printer is not operational"
DEFAULT_PROFILE = {"id": "_default", "name": "Default"}
CONNECTION_COMMANDS = ("connect", "disconnect", "fake_ack")

# GET /api/job with no job: every field there, every value null, state "Offline".
JOB = {
    "job": {
        "estimatedPrintTime": None,
        "filament": {"length": None, "volume": None},
        "file": {"date": None, "name": None, "origin": None, "path": None, "size": None},
        "lastPrintTime": None,
        "user": None,
    },
    "progress": {
        "completion": None,
        "filepos": None,
        "printTime": None,
        "printTimeLeft": None,
        "printTimeLeftOrigin": None,
    },
    "state": "Offline",
}

# GET /api/connection: closed, and nothing to connect to (sysmenu drives no serial port).
CONNECTION = {
    "current": {"baudrate": None, "port": None, "printerProfile": "_default", "state": "Closed"},
    "options": {
        "baudratePreference": None,
        "baudrates": [],
        "portPreference": None,
        "ports": [],
        "printerProfilePreference": "_default",
        "printerProfiles": [DEFAULT_PROFILE],
    },
}


def json_object(body: bytes, request: Request) -> dict[str, Any]:
    """A JSON object request body (400 when it is not one, 415 when not sent as JSON)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise UnsupportedMediaType("Expected content type application/json")
    try:
        data = json.loads(body)
    except ValueError:
        raise BadRequest("Malformed JSON body in request") from None
    if not isinstance(data, dict):
        raise BadRequest("Expected a JSON object")
    return data


def server_uuid(data_dir: str) -> str:
    """A stable id of this server (machine and data directory), where OctoPrint gives
    its UPnP id: Home Assistant names the device by it and refuses a second entry."""
    try:
        with open("/etc/machine-id", encoding="ascii") as fh:
            machine = fh.read().strip()
    except OSError:
        machine = platform.node()
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sysmenu:{machine}:{data_dir}"))


def settings_body(name: str, uuid_: str) -> dict[str, Any]:
    """What ``GET /api/settings`` shows: only the parts clients read, never a secret
    (no API key, no command lines, no paths). ``plugins.discovery.upnpUuid`` is the
    one plugin value: Home Assistant's set-up reads the server's id from it."""
    return {
        "api": {"allowCrossOrigin": False},
        "appearance": {
            "name": name,
            "color": "default",
            "colorTransparent": False,
            "defaultLanguage": "_default",
        },
        "feature": {
            "sdSupport": False,
            "temperatureGraph": False,
            "keyboardControl": False,
            "pollWatched": False,
            "modelSizeDetection": False,
            "printStartConfirmation": False,
            "printCancelConfirmation": True,
        },
        "folder": {},
        "plugins": {"discovery": {"upnpUuid": uuid_}},
        "serial": {
            "autoconnect": False,
            "port": None,
            "baudrate": None,
            "portOptions": [],
            "baudrateOptions": [],
        },
        "temperature": {"profiles": []},
        "webcam": {"webcamEnabled": False, "timelapseEnabled": False, "streamUrl": "", "snapshotUrl": ""},
    }


def user_record(identity: auth.Identity) -> dict[str, Any]:
    """The user as a passive login answers it (OctoPrint's login shape, sysmenu's facts)."""
    user = identity.user
    admin = user.can(ADMIN)
    return {
        "name": user.name,
        "active": True,
        "user": True,
        "admin": admin,
        "apikey": None,  # sysmenu keeps keys hashed: it cannot show one
        "groups": list(user.groups),
        "permissions": sorted(user.permissions),
        "roles": ["user", "admin"] if admin else ["user"],
        "needs": {"group": list(user.groups), "role": sorted(p.lower() for p in user.permissions)},
        "settings": {},
        "session": None,  # no push socket to authenticate (see docs/compatibility.md)
        "_login_mechanism": identity.method,
        "_is_external_client": False,
    }


def _memory() -> tuple[int | None, int | None]:
    """Total and available memory in bytes, from /proc/meminfo (None where unknown)."""
    values: dict[str, int] = {}
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                name, _, rest = line.partition(":")
                if name in ("MemTotal", "MemAvailable"):
                    values[name] = int(rest.split()[0]) * 1024
    except (OSError, ValueError):
        pass
    return values.get("MemTotal"), values.get("MemAvailable")


def _cpu_mhz() -> float:
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/scaling_max_freq", encoding="ascii") as fh:
            return int(fh.read().strip()) / 1000
    except (OSError, ValueError):
        return 0.0


def system_info(request: Request) -> dict[str, Any]:
    """Host facts in the flat ``dotted.key: value`` form of OctoPrint's system info."""
    total, _ = _memory()
    return {
        "browser.user_agent": request.headers.get("user-agent", ""),
        "env.hardware.cores": os.cpu_count() or 0,
        "env.hardware.freq": _cpu_mhz(),
        "env.hardware.ram": total or 0,
        "env.os.bits": 64 if sys.maxsize > 2**32 else 32,
        "env.os.id": sys.platform,
        "env.os.platform": platform.platform(),
        "env.python.version": platform.python_version(),
        "env.python.virtualenv": sys.prefix != sys.base_prefix,
        "octoprint.safe_mode": False,
        "octoprint.version": OCTOPRINT_VERSION,
        "sysmenu.version": __version__,
        "systeminfo.generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "systeminfo.generator": "sysmenu",
    }


def system_usage(data_dir: str) -> dict[str, dict[str, int]]:
    """Free and total bytes: the data directory's file system, the root file system and
    memory (each ``{"free", "total"}``, the shape of OctoPrint's per-folder usage)."""
    usage: dict[str, dict[str, int]] = {}
    for name, path in (("data", data_dir), ("root", "/")):
        try:
            disk = shutil.disk_usage(path)
        except OSError:
            continue
        usage[name] = {"free": disk.free, "total": disk.total}
    total, available = _memory()
    if total is not None and available is not None:
        usage["memory"] = {"free": available, "total": total}
    return usage


class OctoPrintCompat:
    """Handlers of the neighbouring OctoPrint endpoints (job, printer, connection,
    settings, util/test, system info and usage)."""

    def __init__(self, state: State) -> None:
        self.state = state

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/job", self.job, methods=["GET"]),
            Route("/api/printer", self.printer, methods=["GET"]),
            Route("/api/connection", self.connection, methods=["GET", "POST"]),  # one route: one Allow
            Route("/api/settings", self.settings, methods=["GET"]),
            Route("/api/util/test", self.util_test, methods=["POST"]),
            Route("/api/system/info", self.info, methods=["GET"]),
            Route("/api/system/usage", self.usage, methods=["GET"]),
        ]

    async def job(self, request: Request) -> Response:
        await self.state.identify_any(request)
        return json_response(JOB)

    async def printer(self, request: Request) -> Response:
        """Credentials first (403), then OctoPrint's answer without a printer: 409."""
        await self.state.identify_any(request)
        raise Conflict(NOT_OPERATIONAL)

    async def connection(self, request: Request) -> Response:
        if request.method == "POST":
            return await self.connection_command(request)
        await self.state.identify_any(request)
        return json_response(CONNECTION)

    async def connection_command(self, request: Request) -> Response:
        """``connect``, ``disconnect`` and ``fake_ack`` are accepted (204) and change
        nothing: there is no port, so the connection stays closed."""
        await self.state.identify_any(request)
        data = json_object(await request.body(), request)
        if data.get("command") not in CONNECTION_COMMANDS:
            raise BadRequest(f"command must be one of {', '.join(CONNECTION_COMMANDS)}")
        return NO_CONTENT

    async def settings(self, request: Request) -> Response:
        await self.state.identify_any(request)
        uuid_ = server_uuid(self._data_dir())
        return json_response(settings_body(platform.node(), uuid_))

    async def util_test(self, request: Request) -> Response:
        """Only the ``address`` test (OctoDash shows the machine's LAN address with it):
        the client's address, whether it is on a local network, and that network."""
        await self.state.identify_any(request)
        data = json_object(await request.body(), request)
        if data.get("command") != "address":
            raise BadRequest("Only the address test is available here")
        address = data.get("address", None)
        if address is not None and not isinstance(address, str):
            raise BadRequest("address must be a string")
        address = address or self.state.proxies.client(request) or ""
        is_lan, subnet = lan_address(address)
        body: dict[str, Any] = {"address": address, "is_lan_address": is_lan}
        if subnet is not None:
            body["subnet"] = subnet
        return json_response(body)

    async def info(self, request: Request) -> Response:
        await self.state.require(request, SYSTEM)
        return json_response({"systeminfo": system_info(request)})

    async def usage(self, request: Request) -> Response:
        await self.state.require(request, SYSTEM)
        return json_response({"usage": system_usage(self._data_dir())})

    def _data_dir(self) -> str:
        """Where this server keeps its database."""
        return os.path.dirname(os.path.abspath(self.state.store.db.path))
