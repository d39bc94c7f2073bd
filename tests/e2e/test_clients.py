"""Real OctoPrint client libraries from PyPI, unchanged, against a real sysmenu server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest
from octorest import OctoRest
from pyoctoprintapi import OctoprintClient
from pyoctoprintapi.exceptions import ApiError, UnauthorizedException

from tests.e2e.server import running_server

pytestmark = pytest.mark.e2e

CONFIG = """\
server:
  commands:
    systemShutdownCommand: "touch {tmp}/shutdown"
    systemRestartCommand: "touch {tmp}/reboot"
    serverRestartCommand: "touch {tmp}/restart"
system:
  actions:
    - action: hello
      name: Hello
      command: "touch {tmp}/hello"
    - action: divider
    - action: fail
      name: Fail
      command: "exit 1"
"""


def test_octorest_lists_and_executes(tmp_path: Path) -> None:
    with running_server(tmp_path, CONFIG.format(tmp=tmp_path)) as server:
        client = OctoRest(url=server.url, apikey=server.key)  # calls /api/version first
        assert client.version["api"] == "0.1"
        everything = client.system_commands()
        assert [c["action"] for c in everything["custom"]] == ["hello", "divider", "fail"]
        core = client.source_system_commands("core")
        assert [c["action"] for c in core] == ["shutdown", "reboot", "restart", "restart_safe"]
        client.execute_system_command("custom", "hello")
        assert (tmp_path / "hello").exists()
        with pytest.raises(RuntimeError, match="500"):
            client.execute_system_command("custom", "fail")
        with pytest.raises(RuntimeError, match="404"):
            client.execute_system_command("custom", "nope")
        with pytest.raises(RuntimeError):
            OctoRest(url=server.url, apikey="wrong-key")


def test_pyoctoprintapi_home_assistant_calls(tmp_path: Path) -> None:
    async def scenario(url_port: int, key: str) -> None:
        async with aiohttp.ClientSession() as session:
            client = OctoprintClient("127.0.0.1", session, url_port, False, "/")
            client.set_api_key(key)
            info = await client.get_server_info()
            assert info.version == "1.11.8"
            await client.shutdown()  # POSTs //api/system/commands/core/shutdown
            await client.reboot_system()
            await client.restart()
            bad = OctoprintClient("127.0.0.1", session, url_port, False, "/")
            bad.set_api_key("wrong")
            with pytest.raises(ApiError):
                await bad.shutdown()
            with pytest.raises(UnauthorizedException):  # 403 makes Home Assistant re-authenticate
                await bad.get_server_info()

    with running_server(tmp_path, CONFIG.format(tmp=tmp_path)) as server:
        asyncio.run(asyncio.wait_for(scenario(server.port, server.key), 30))
        for name in ("shutdown", "reboot", "restart"):
            for _ in range(100):  # core commands are async: give them a moment
                if (tmp_path / name).exists():
                    break
                time.sleep(0.05)
            assert (tmp_path / name).exists(), name
