"""The systemd unit sysmenu runs under, and the drop-in the sudo variant adds.

`contrib/systemd/sysmenu.service` and `contrib/systemd/sysmenu.service.d/sudo.conf` are
these texts with the default ExecStart (tests/test_service.py checks it): change them here.
"""

from __future__ import annotations

import shlex

DEFAULT_SYSMENU = "/usr/local/bin/sysmenu"
DEFAULT_CONFIG = "/etc/sysmenu/config.yaml"
DEFAULT_DATA_DIR = "/var/lib/sysmenu"
SERVICE_USER = "sysmenu"
DEFAULT_VENV = "/opt/sysmenu"  # where `sysmenu service install` puts a venv of its own

_UNIT = """\
# sysmenu as a hardened system service (see docs/security.md).
#
# Install: `sudo sysmenu service install` writes this unit (ExecStart naming the installed
# sysmenu), the sysmenu user, the config and the rules for exactly the configured commands.
# By hand:
#   adduser --system --group --no-create-home --home /var/lib/sysmenu sysmenu
#   install -m 0644 contrib/systemd/sysmenu.service /etc/systemd/system/
#   install -d -m 0755 /etc/sysmenu && install -m 0644 config.yaml /etc/sysmenu/
#   systemctl daemon-reload && systemctl enable --now sysmenu
#
# This unit is the polkit variant: sysmenu's commands ask systemd (systemctl, over D-Bus)
# and contrib/polkit/50-sysmenu.rules lets the sysmenu user do exactly those. It keeps
# NoNewPrivileges=yes and an empty capability bounding set, so nothing sysmenu starts can
# ever gain privileges. For the sudo variant add contrib/systemd/sysmenu.service.d/sudo.conf.
#
# Socket activation (no memory used while idle): install contrib/systemd/sysmenu.socket
# too and `systemctl enable --now sysmenu.socket` instead of the service; systemd then
# listens and starts sysmenu on the first connection, and sysmenu exits after
# SYSMENU_IDLE_EXIT idle seconds (below; only under socket activation).
#
# Every command sysmenu runs inherits this sandbox (read-only system, no /home, private
# /tmp): prefer commands that ask systemd to do the work, such as `systemctl reboot`.

[Unit]
Description=sysmenu: the System menu and OctoPrint-compatible System API
Documentation=file:///usr/share/doc/sysmenu/security.md
After=network.target

[Service]
# sysmenu tells systemd when it serves (READY=1), what runs (STATUS=), that its event
# loop is alive (WATCHDOG=1 every half WatchdogSec) and when it stops (STOPPING=1).
Type=notify
NotifyAccess=main
WatchdogSec=30
User=sysmenu
Group=sysmenu
ExecStart={exec_start}
Environment=PYTHONUNBUFFERED=1
# Started by sysmenu.socket: exit after this many seconds without requests, open
# connections or running commands (overrides sysmenu.idle_exit; ignored without the socket).
Environment=SYSMENU_IDLE_EXIT=60
Restart=on-failure
RestartSec=2

# State (users, hashed keys, runs, audit) in /var/lib/sysmenu, owned by sysmenu, mode 0700;
# the config in /etc/sysmenu stays read-only and belongs to root.
StateDirectory=sysmenu
StateDirectoryMode=0700
ConfigurationDirectory=sysmenu
ConfigurationDirectoryMode=0755
UMask=0077

# Stopping: SIGTERM to sysmenu alone, which stops its runs (SIGTERM to each run's process
# group, SIGKILL after kill_grace) and records how they ended; whatever is left when
# TimeoutStopSec passes is killed with the whole cgroup.
KillMode=mixed
TimeoutStopSec=20

# No privileges, ever.
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
RestrictSUIDSGID=yes

# File system: read-only except the state directory; no home directories; own /tmp.
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
DevicePolicy=closed
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible

# Network: IP for the API, Unix sockets for D-Bus (polkit, logind, systemd) and the journal.
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
# Listening on 127.0.0.1 only (the default)? Then also:
#IPAddressDeny=any
#IPAddressAllow=localhost

# Kernel interfaces a Python web service has no use for.
RestrictNamespaces=yes
RestrictRealtime=yes
LockPersonality=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
"""

SUDO_DROPIN = """\
# The sudo variant (see docs/security.md): sysmenu's commands run `sudo -n ...`, allowed by
# contrib/sudoers.d/sysmenu. Install as /etc/systemd/system/sysmenu.service.d/sudo.conf.
#
# sudo is a set-user-ID program: it needs the privileges the main unit takes away.
# NoNewPrivileges=yes would make sudo fail ("effective uid is not 0"), and an empty
# capability bounding set would leave it root without the power to switch users.
# The price: a bug in sysmenu or in a configured command could reach whatever sudoers
# allows, so keep the sudoers list short and exact. The polkit variant keeps both locks.

[Service]
NoNewPrivileges=no
CapabilityBoundingSet=CAP_SETUID CAP_SETGID CAP_AUDIT_WRITE
# sudo reports to the audit subsystem over netlink and keeps its time stamps in /run/sudo.
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
ReadWritePaths=-/run/sudo
"""


def render_unit(
    sysmenu: str = DEFAULT_SYSMENU,
    config: str = DEFAULT_CONFIG,
    data_dir: str = DEFAULT_DATA_DIR,
    user: str = SERVICE_USER,
) -> str:
    """The unit with sysmenu's path, the config, the data directory and the user filled in."""
    argv = [sysmenu, "--config", config, "--data-dir", data_dir, "serve"]
    text = _UNIT.format(exec_start=shlex.join(argv))
    return text.replace(f"\nUser={SERVICE_USER}\nGroup={SERVICE_USER}\n", f"\nUser={user}\nGroup={user}\n")


def unit_settings(text: str) -> dict[str, str]:
    """The `[Service]` settings of a unit (the last one of each key wins, as in systemd)."""
    settings: dict[str, str] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Service" and "=" in line:
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    return settings
