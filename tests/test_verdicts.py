"""GET /api/status says, per command, whether it can run here (as the server's user)."""

from __future__ import annotations

import os

import pytest

from sysmenu.catalogue import CommandSpec
from sysmenu.doctor import Account, Prober, command_verdict
from tests.conftest import Env

CONFIG = """\
server:
  commands:
    systemShutdownCommand: /no/such/poweroff-program now
system:
  actions:
    - action: hello
      command: echo hello
    - action: divider
    - action: uptime
      command: uptime | cat
    - action: gone
      name: Gone
      command: no-such-program-anywhere --now
"""


@pytest.mark.anyio
@pytest.mark.config(CONFIG)
async def test_status_names_commands_that_cannot_run(env: Env) -> None:
    r = await env.client.get("/api/status", headers=env.auth())
    assert r.status_code == 200
    commands = {f"{c['source']}:{c['action']}": c for c in r.json()["commands"]}
    assert list(commands) == ["core:shutdown", "custom:hello", "custom:uptime", "custom:gone"]
    assert commands["custom:hello"] == {
        "source": "custom",
        "action": "hello",
        "runnable": True,
        "why": None,
        "fix": None,
    }
    assert commands["custom:uptime"]["runnable"] is True
    gone = commands["custom:gone"]
    assert gone["runnable"] is False and "no-such-program-anywhere is not installed" in gone["why"]
    assert gone["fix"] == "install no-such-program-anywhere or fix the command line"
    assert commands["core:shutdown"]["runnable"] is False
    # checked once, then kept: a second status answers from the same check
    again = await env.client.get("/api/status", headers=env.auth())
    assert again.json()["commands"] == r.json()["commands"]


@pytest.mark.anyio
async def test_status_needs_system(env: Env) -> None:
    r = await env.client.get("/api/status", headers=env.auth(env.user_key))
    assert r.status_code == 403


def test_sudo_cannot_work_under_no_new_privileges() -> None:
    account = Account.current()
    if account.uid == 0:
        account = Account("nobody-like", 65534, 65534, ())
        prober = Prober.__new__(Prober)  # checking rules only: no probe runs as this account
        prober.account, prober.no_new_privileges, prober.switch = account, True, False
    else:
        prober = Prober(account, no_new_privileges=True)
    verdict = command_verdict(CommandSpec("core", "shutdown", "S", "sudo -n /bin/true"), prober)
    assert verdict.runnable is False
    assert "NoNewPrivileges=yes" in verdict.why and "sudo.conf" in verdict.fix


@pytest.mark.skipif(os.path.isdir("/run/systemd/system"), reason="systemd runs here: polkit decides instead")
def test_systemctl_without_systemd_cannot_run() -> None:
    prober = Prober(Account.current())
    verdict = command_verdict(CommandSpec("core", "reboot", "R", "systemctl reboot"), prober)
    assert verdict.runnable is False and verdict.why == "systemd is not running on this machine"
