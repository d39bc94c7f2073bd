"""Hostile requests, in-process: odd key placements, path tricks, overrides, bodies, CORS."""

from __future__ import annotations

import pytest

from tests.conftest import Env

pytestmark = pytest.mark.anyio

URL = "/api/system/commands"


async def test_duplicated_key_headers_that_disagree_are_refused(env: Env) -> None:
    headers = [("X-Api-Key", "wrong"), ("X-Api-Key", env.admin_key)]
    r = await env.client.get(URL, headers=headers)
    assert r.status_code == 403
    headers = [("X-Api-Key", env.admin_key), ("X-Api-Key", "wrong")]
    r = await env.client.get(URL, headers=headers)
    assert r.status_code == 403
    headers = [("X-Api-Key", env.admin_key), ("X-Api-Key", env.admin_key)]
    assert (await env.client.get(URL, headers=headers)).status_code == 200


@pytest.mark.parametrize("name", ["x-api-key", "X-API-KEY", "X-Api-Key"])
async def test_header_name_case_does_not_matter(env: Env, name: str) -> None:
    assert (await env.client.get(URL, headers={name: env.admin_key})).status_code == 200


async def test_one_key_per_request_wrong_is_not_rescued(env: Env) -> None:
    # One key is tried per request, the first present in OctoPrint's order (query, then
    # header): a wrong one is never rescued by a right one elsewhere in the request.
    r = await env.client.get(URL, params={"apikey": "wrong"}, headers={"X-Api-Key": env.admin_key})
    assert r.status_code == 403
    r = await env.client.get(URL, params={"apikey": env.admin_key}, headers={"X-Api-Key": "wrong"})
    assert r.status_code == 200


async def test_non_ascii_key_is_403(env: Env) -> None:
    r = await env.client.get(URL, headers={"X-Api-Key": "kéy☕".encode()})
    assert r.status_code == 403
    r = await env.client.get(URL, params={"apikey": "kéy☕\x00"})
    assert r.status_code == 403


async def test_user_key_in_query_cannot_escalate(env: Env) -> None:
    r = await env.client.get(URL, params={"apikey": env.user_key})
    assert r.status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "/api/system/commands/custom/%2e%2e/custom/hello",
        "/api/system/commands/custom%2fhello",
        "/api/system/commands/custom/hello%2f",
        "/api/system/commands/custom/hello.",
        "/api/system/commands/Custom/hello",
        "/api/system/commands/custom/HELLO",
        "/api/system/commands/custom/hello%00",
        "/api/system/commands/custom/hello%5c",
    ],
)
# (literal "." and ".." segments are normalised away by httpx itself: tests/e2e/test_attacks.py
# sends them raw.)
async def test_path_tricks_run_nothing(env: Env, path: str) -> None:
    r = await env.client.post(f"http://example.com{path}", headers=env.auth())
    assert r.status_code in (404, 405), path
    assert "error" in r.json()
    assert env.store.list_runs() == []


async def test_method_override_headers_are_ignored(env: Env) -> None:
    for header in ("X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"):
        r = await env.client.get(f"{URL}/custom/hello", headers=env.auth() | {header: "POST"})
        assert r.status_code == 405
        r = await env.client.post(URL, headers=env.auth() | {header: "GET"})
        assert r.status_code == 405
    r = await env.client.get(f"{URL}/custom/hello", params={"_method": "POST"}, headers=env.auth())
    assert r.status_code == 405
    assert env.store.list_runs() == []


async def test_huge_body_is_413_json_and_runs_nothing(env: Env) -> None:
    r = await env.client.post(f"{URL}/custom/hello", content=b"x" * 200_000, headers=env.auth())
    assert r.status_code == 413
    assert r.json() == {"error": "Request body too large"}

    async def chunks():  # no Content-Length: counted as it streams
        for _ in range(100):
            yield b"y" * 10_000

    r = await env.client.post("/api/system", content=chunks(), headers=env.auth())
    assert r.status_code == 413
    assert "error" in r.json()
    assert env.store.list_runs() == []


async def test_no_cors_by_default(env: Env) -> None:
    origin = {"Origin": "http://evil.example"}
    r = await env.client.get(URL, headers=env.auth() | origin)
    assert r.status_code == 200
    assert not any(h.lower().startswith("access-control-") for h in r.headers)
    r = await env.client.options(
        URL,
        headers=origin
        | {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "X-Api-Key"},
    )
    assert r.status_code == 405
    assert not any(h.lower().startswith("access-control-") for h in r.headers)


async def test_no_traceback_in_any_error(env: Env) -> None:
    for method, path in [
        ("GET", "/nope"),
        ("DELETE", URL),
        ("GET", "/api/runs?limit=abc"),
        ("POST", "/api/system"),
    ]:
        r = await env.client.request(method, path, headers=env.auth())
        assert 400 <= r.status_code < 500
        assert set(r.json()) == {"error"}
        assert "Traceback" not in r.text
