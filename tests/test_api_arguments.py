"""Commands with typed arguments through the System API (in-process, real processes).

The commands here print what they received (``printf '%s\\0'``, ``printenv``), so a
test compares the bytes a command got with the value it sent; a canary file that a
shell would create if any value were ever parsed as code must never appear.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Env

pytestmark = pytest.mark.anyio

URL = "/api/system/commands"
CANARY = "/tmp/sysmenu-test-canary-never"
HOSTILE = [
    f"; touch {CANARY}",
    f"$(touch {CANARY})",
    f"`touch {CANARY}`",
    f"' ; touch {CANARY} ; '",
    f'" ; touch {CANARY} ; "',
    f"x\ntouch {CANARY}",
    f"x && touch {CANARY} #",
    f"| touch {CANARY}",
    f"${{IFS}}touch${{IFS}}{CANARY}",
    "-rf",
    "--help",
    "ünïcødé ☕ \u202e",
    "",
    " ",
    "\\",
    "{unit}",
    "%s%n",
]

CONFIG = """\
system:
  actions:
    - action: plain
      name: No arguments
      command: echo plain
    - action: shell
      name: Through the shell
      command: printf '%s\\0' "$@"
      arguments:
        - name: text
          type: string
        - name: count
          type: int
          min: 0
          max: 600
          default: 0
        - name: ratio
          type: float
          required: false
        - name: flag
          type: bool
        - name: unit
          type: choice
          choices: [nginx, {value: mosquitto, label: Mosquitto broker}]
          default: nginx
    - action: env
      name: Environment
      command: printenv SYSMENU_ARG_TEXT
      arguments:
        - name: text
          type: string
    - action: both
      name: Positional and environment
      command: printf '%s\\0' "$@"; printenv SYSMENU_ARG_TEXT
      arguments:
        - name: text
          type: string
    - action: direct
      name: No shell
      argv: [/usr/bin/printf, "%s|%s", "{text}", "--x={text}"]
      arguments:
        - name: text
          type: string
    - action: option
      name: Option allowed
      argv: [/usr/bin/printf, "%s", "{text}"]
      arguments:
        - name: text
          type: string
          allow_option: true
    - action: secret
      name: Secret
      argv: [/usr/bin/printf, "%s", "{token}"]
      arguments:
        - name: token
          type: string
          secret: true
        - name: note
          type: string
          pattern: "[a-z]{1,8}"
          default: hi
"""


def received(env: Env, run_id: int) -> str:
    return str(env.store.runs.get(run_id).stdout)  # type: ignore[union-attr]


async def run(env: Env, action: str, arguments: Any = None, **extra: Any) -> Any:
    body = None if arguments is None else json.dumps({"arguments": arguments})
    headers = env.auth() | {"Prefer": "respond-async", "Content-Type": "application/json"}
    response = await env.client.post(f"{URL}/custom/{action}", content=body, headers=headers | extra)
    return response


async def finished(env: Env, response: Any) -> str:
    assert response.status_code == 202, response.text
    run_id = response.json()["id"]
    live = env.app.state.sysmenu.runner.running.get(run_id)  # type: ignore[union-attr]
    if live is not None:
        await live.done.wait()
    record = env.store.runs.get(run_id)
    assert record is not None and record.state == "ok", record
    return received(env, run_id)


@pytest.mark.config(CONFIG)
async def test_list_items_carry_arguments_and_others_are_unchanged(env: Env) -> None:
    custom = (await env.client.get(f"{URL}/custom", headers=env.auth())).json()
    by_action = {item["action"]: item for item in custom}
    assert by_action["plain"] == {
        "action": "plain",
        "name": "No arguments",
        "source": "custom",
        "resource": "http://example.com/api/system/commands/custom/plain",
    }
    shown = by_action["shell"]["arguments"]
    assert [a["name"] for a in shown] == ["text", "count", "ratio", "flag", "unit"]
    assert shown[1] == {"name": "count", "type": "int", "required": False, "default": 0, "min": 0, "max": 600}
    assert shown[4]["choices"] == [
        {"value": "nginx", "label": "nginx"},
        {"value": "mosquitto", "label": "Mosquitto broker"},
    ]
    assert by_action["secret"]["arguments"][0] == {
        "name": "token",
        "type": "string",
        "required": True,
        "secret": True,
        "max_length": 4096,
    }


@pytest.mark.config(CONFIG)
async def test_values_are_positional_parameters_in_declared_order(env: Env) -> None:
    out = await finished(env, await run(env, "shell", {"text": "a b", "flag": True, "ratio": 2}))
    assert out == "a b\x000\x002.0\x00true\x00nginx\x00"


@pytest.mark.config(CONFIG)
async def test_values_are_environment_variables(env: Env) -> None:
    assert await finished(env, await run(env, "env", {"text": "$(id) `id` ;id"})) == "$(id) `id` ;id\n"


@pytest.mark.config(CONFIG)
async def test_argv_runs_without_a_shell_each_value_one_element(env: Env) -> None:
    out = await finished(env, await run(env, "direct", {"text": "a b; c $HOME"}))
    assert out == "a b; c $HOME|--x=a b; c $HOME"


@pytest.mark.config(CONFIG)
async def test_option_like_values_only_where_allowed(env: Env) -> None:
    refused = await run(env, "direct", {"text": "--version"})
    assert refused.status_code == 400
    assert "option" in refused.json()["errors"]["text"]
    assert await finished(env, await run(env, "option", {"text": "--version"})) == "--version"


@pytest.mark.config(CONFIG)
async def test_invalid_values_get_one_error_per_argument(env: Env) -> None:
    r = await run(env, "shell", {"count": 601, "unit": "apache", "extra": 1, "flag": "yes"})
    assert r.status_code == 400
    body = r.json()
    assert body["errors"] == {
        "extra": "is not an argument of this command",
        "text": "is required",
        "count": "should be at most 600",
        "flag": "should be true or false",
        "unit": "should be one of: nginx, mosquitto",
    }
    assert body["error"].startswith("Invalid arguments: ")
    assert env.store.runs.list() == []


@pytest.mark.config(CONFIG)
@pytest.mark.parametrize("body", [None, b"", b"{}", b'{"arguments": {}}'])
async def test_required_arguments_without_a_body_get_400_naming_them(env: Env, body: bytes | None) -> None:
    r = await env.client.post(f"{URL}/custom/env", content=body, headers=env.auth())
    assert r.status_code == 400
    assert r.json()["errors"] == {"text": "is required"}


@pytest.mark.config(CONFIG)
@pytest.mark.parametrize(
    ("body", "says"),
    [(b"{not json", "not valid JSON"), (b"[1]", "JSON object"), (b"[" * 50000, "not valid JSON")],
)
async def test_malformed_bodies_are_400(env: Env, body: bytes, says: str) -> None:
    r = await env.client.post(f"{URL}/custom/env", content=body, headers=env.auth())
    assert r.status_code == 400
    assert says in r.json()["error"]


@pytest.mark.config(CONFIG)
async def test_commands_without_arguments_ignore_the_body(env: Env) -> None:
    r = await env.client.post(f"{URL}/custom/plain", content=b'{"arguments": {"x": 1}}', headers=env.auth())
    assert r.status_code == 204


@pytest.mark.config(CONFIG)
async def test_history_audit_and_logs_keep_secrets_masked(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    out = await finished(env, await run(env, "secret", {"token": "hunter2"}))
    assert out == "hunter2"
    (listed,) = env.store.runs.list()
    assert listed.arguments == {"token": "********", "note": "hi"}
    shown = (await env.client.get(f"/api/runs/{listed.id}", headers=env.auth())).json()
    assert shown["arguments"] == {"token": "********", "note": "hi"}
    assert "hunter2" not in (await env.client.get("/api/runs", headers=env.auth())).text
    (event,) = [e for e in env.store.audit.list() if e["event"] == "execute"]
    assert event["detail"]["arguments"] == {"token": "********", "note": "hi"}
    assert "hunter2" not in caplog.text
    raw = Path(env.store.db.path).read_bytes()
    assert b"hunter2" not in raw


@pytest.mark.config(CONFIG)
async def test_idempotency_key_replays_only_the_same_arguments(env: Env) -> None:
    key = {"Idempotency-Key": "k1"}
    first = await run(env, "secret", {"token": "a"}, **key)
    await finished(env, first)
    again = await run(env, "secret", {"token": "a"}, **key)
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
    other = await run(env, "secret", {"token": "b"}, **key)
    assert other.status_code == 422
    assert "other arguments" in other.json()["error"]
    assert len(env.store.runs.list()) == 1


# -- hostile values, generated ------------------------------------------------------------

hostile_text = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=200))
any_json = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    hostile_text,
    st.lists(st.integers(), max_size=3),
)


def run_count(env: Env) -> int:
    """How many runs the store holds (one query: the property tests below make hundreds)."""
    return int(env.store.db.conn.execute("SELECT count(*) FROM runs").fetchone()[0])


async def _check_delivery(
    env: Env, action: str, arguments: dict[str, Any], name: str, expect: str | None
) -> None:
    """The value of `name` either reaches the command byte for byte (`expect`) or is
    refused with 400 naming it, and nothing runs; never a 500, never the canary."""
    before = run_count(env)
    r = await run(env, action, arguments)
    if r.status_code == 202:
        out = await finished(env, r)
        assert expect is not None, f"{arguments[name]!r} was accepted"
        assert out == expect
    else:
        assert r.status_code == 400, r.text
        assert expect is None, f"{arguments[name]!r} was refused: {r.text}"
        assert set(r.json()["errors"]) == {name}
        assert run_count(env) == before
    assert not Path(CANARY).exists()


HYPOTHESIS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.config(CONFIG)
@HYPOTHESIS
@given(value=hostile_text)
async def test_strings_arrive_exactly_in_argv_env_and_positional(env: Env, value: str) -> None:
    valid = "\x00" not in value and not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    await _check_delivery(env, "option", {"text": value}, "text", value if valid else None)
    # one shell gets it both ways: as "$1" and as SYSMENU_ARG_TEXT (one process fewer a value)
    both = f"{value}\x00{value}\n"
    await _check_delivery(env, "both", {"text": value}, "text", both if valid else None)
    direct = None if not valid or value.startswith("-") else f"{value}|--x={value}"
    await _check_delivery(env, "direct", {"text": value}, "text", direct)


@pytest.mark.config(CONFIG)
@HYPOTHESIS
@given(value=any_json)
async def test_typed_values_are_checked_or_refused(env: Env, value: Any) -> None:
    # A whole number may come as 5 or 5.0 (JSON does not tell them apart); null is "not given".
    number = isinstance(value, int | float) and not isinstance(value, bool)
    whole = number and float(value).is_integer()
    fits = whole and 0 <= value <= 600
    count = f"t\x00{int(value)}\x00\x00false\x00nginx\x00" if fits else None
    await _check_delivery(env, "shell", {"text": "t", "count": value}, "count", count)
    real = isinstance(value, int | float) and not isinstance(value, bool) and abs(value) != float("inf")
    ratio = f"t\x000\x00{float(value)!r}\x00false\x00nginx\x00" if real and value == value else None
    await _check_delivery(env, "shell", {"text": "t", "ratio": value}, "ratio", ratio)
    flag = f"t\x000\x00\x00{str(value).lower()}\x00nginx\x00" if isinstance(value, bool) else None
    await _check_delivery(env, "shell", {"text": "t", "flag": value}, "flag", flag)
    unit = f"t\x000\x00\x00false\x00{value}\x00" if value in ("nginx", "mosquitto") else None
    await _check_delivery(env, "shell", {"text": "t", "unit": value}, "unit", unit)


@pytest.mark.config(CONFIG)
async def test_large_values_are_refused_not_truncated(env: Env) -> None:
    r = await run(env, "option", {"text": "x" * 4097})
    assert r.status_code == 400 and "longer than 4096" in r.json()["errors"]["text"]
    megabyte = await run(env, "option", {"text": "x" * 1_000_000})
    assert megabyte.status_code == 413
    assert env.store.runs.list() == []


@pytest.mark.config(CONFIG)
async def test_openapi_describes_commands_only_to_system_callers(env: Env) -> None:
    path = "/api/system/commands/custom/shell"
    described = (await env.client.get("/api/openapi.json", headers=env.auth())).json()
    body = described["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema = body["properties"]["arguments"]
    assert schema["required"] == ["text"] and schema["additionalProperties"] is False
    assert schema["properties"]["count"] == {"type": "integer", "minimum": 0, "maximum": 600}
    assert schema["properties"]["unit"]["enum"] == ["nginx", "mosquitto"]
    for headers in ({}, env.auth(env.user_key), {"X-Api-Key": "wrong"}):
        anonymous = await env.client.get("/api/openapi.json", headers=headers)
        assert anonymous.status_code == 200
        assert "shell" not in anonymous.text and "custom/" not in anonymous.text
