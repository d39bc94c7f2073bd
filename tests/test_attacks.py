"""Hostile requests, in-process: odd key placements, path tricks, overrides, bodies, CORS."""

from __future__ import annotations

import pytest

from tests.conftest import Env
from tests.test_auth import ANY_KEY, ANY_KEY_NO_SUCCESS, PROTECTED, PUBLIC

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


async def test_duplicated_query_keys_and_bearer_tokens_that_disagree_are_refused(env: Env) -> None:
    # Starlette's query_params.get() answers the last copy: "?apikey=wrong&apikey=right" was
    # believed while disagreeing X-Api-Key headers were not. Now every place is alike.
    for params in (
        [("apikey", "wrong"), ("apikey", env.admin_key)],
        [("apikey", env.admin_key), ("apikey", "")],
    ):
        assert (await env.client.get(URL, params=params)).status_code == 403, params
    same = [("apikey", env.admin_key), ("apikey", env.admin_key)]
    assert (await env.client.get(URL, params=same)).status_code == 200
    bearers = [("Authorization", "Bearer wrong"), ("Authorization", f"Bearer {env.admin_key}")]
    assert (await env.client.get(URL, headers=bearers)).status_code == 403
    bearers = [("Authorization", f"Bearer {env.admin_key}"), ("Authorization", f"Bearer {env.admin_key}")]
    assert (await env.client.get(URL, headers=bearers)).status_code == 200


async def test_first_place_holding_a_key_is_the_one_believed(env: Env) -> None:
    # OctoPrint's order: ?apikey=, then X-Api-Key, then Authorization: Bearer
    wrong_header_right_bearer = {"X-Api-Key": "wrong", "Authorization": f"Bearer {env.admin_key}"}
    assert (await env.client.get(URL, headers=wrong_header_right_bearer)).status_code == 403
    wrong_query_right_bearer = {"Authorization": f"Bearer {env.admin_key}"}
    r = await env.client.get(URL, headers=wrong_query_right_bearer, params={"apikey": "wrong"})
    assert r.status_code == 403
    # an empty place holds no key: the next place is looked at
    r = await env.client.get(URL, headers={"X-Api-Key": env.admin_key}, params={"apikey": ""})
    assert r.status_code == 200
    r = await env.client.get(URL, headers={"X-Api-Key": "", "Authorization": f"Bearer {env.admin_key}"})
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("headers", "params"),
    [
        ({}, {"apikey": ""}),
        ({"Authorization": "Bearer "}, {}),
        ({"Authorization": "Bearer"}, {}),
        ({"Authorization": ""}, {}),
        ({"X-Api-Key": ""}, {"apikey": ""}),
    ],
)
async def test_empty_keys_are_403(env: Env, headers: dict[str, str], params: dict[str, str]) -> None:
    r = await env.client.get(URL, headers=headers, params=params)
    assert r.status_code == 403
    assert set(r.json()) == {"error"}


async def test_very_long_keys_are_403_everywhere(env: Env) -> None:
    long = env.admin_key + "A" * 100_000  # the real key as a prefix: still not the key
    assert (await env.client.get(URL, headers={"X-Api-Key": long})).status_code == 403
    assert (await env.client.get(URL, headers={"Authorization": f"Bearer {long}"})).status_code == 403
    assert (await env.client.get(URL, params={"apikey": long[:60_000]})).status_code == 403
    assert (await env.client.get(URL, headers=env.auth())).status_code == 200


async def test_non_ascii_key_is_403(env: Env) -> None:
    r = await env.client.get(URL, headers={"Authorization": "Bearer kéy☕".encode()})
    assert r.status_code == 403
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
        "/api/system/commands/custom/%2E%2E/custom/hello",
        "/api/system/commands/custom./hello",
        "/api/system/commands/custom/hello/",
        "/api/system/commands/custom/hello..",
        "/API/System/Commands/custom/hello",
        "/api/system/commands/custom/hello;x",
        "/api/runs/1/%2e%2e/%2e%2e/system/commands/custom/hello",
    ],
)
# (literal "." and ".." segments are normalised away by httpx itself: tests/e2e/test_attacks.py
# sends them raw.)
async def test_path_tricks_run_nothing(env: Env, path: str) -> None:
    r = await env.client.post(f"http://example.com{path}", headers=env.auth())
    assert r.status_code in (404, 405), path
    assert "error" in r.json()
    assert env.store.runs.list() == []


@pytest.mark.parametrize("path", ["/API/System/Commands", "/api/system/commands/", "/Api/system/commands"])
async def test_other_spellings_of_the_list_are_404(env: Env, path: str) -> None:
    r = await env.client.get(path, headers=env.auth())
    assert r.status_code == 404
    assert "hello" not in r.text


async def test_doubled_slashes_are_collapsed_but_still_need_a_key(env: Env) -> None:
    for path in ("http://example.com//api/system/commands", "http://example.com/api//system///commands"):
        assert (await env.client.get(path)).status_code == 403
        assert (await env.client.get(path, headers={"X-Api-Key": env.user_key})).status_code == 403
        assert (await env.client.get(path, headers=env.auth())).status_code == 200
    r = await env.client.post(
        "http://example.com//api/system/commands/custom/hello", headers={"X-Api-Key": env.user_key}
    )
    assert r.status_code == 403
    assert env.store.runs.list() == []


async def test_method_override_cannot_turn_a_post_into_something_else(env: Env) -> None:
    for value in ("GET", "DELETE", "OPTIONS"):
        r = await env.client.post(
            f"{URL}/custom/hello", headers=env.auth() | {"X-HTTP-Method-Override": value}
        )
        assert r.status_code == 204  # still a POST: the command ran
    assert len(env.store.runs.list()) == 3


async def test_method_override_headers_are_ignored(env: Env) -> None:
    for header in ("X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"):
        r = await env.client.get(f"{URL}/custom/hello", headers=env.auth() | {header: "POST"})
        assert r.status_code == 405
        r = await env.client.post(URL, headers=env.auth() | {header: "GET"})
        assert r.status_code == 405
    r = await env.client.get(f"{URL}/custom/hello", params={"_method": "POST"}, headers=env.auth())
    assert r.status_code == 405
    assert env.store.runs.list() == []


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
    assert env.store.runs.list() == []


ORIGIN = {"Origin": "http://evil.example"}


def assert_no_cors(r) -> None:  # type: ignore[no-untyped-def]
    cors = [h for h in r.headers if h.lower().startswith("access-control-")]
    assert cors == [], (r.request.method, r.request.url, cors)


@pytest.mark.parametrize(("method", "path"), PROTECTED + ANY_KEY + ANY_KEY_NO_SUCCESS + PUBLIC)
async def test_no_cors_headers_on_any_endpoint(env: Env, method: str, path: str) -> None:
    """sysmenu has no CORS setting: no answer grants a cross-origin page access."""
    for headers in ({}, env.auth(), {"X-Api-Key": env.user_key}):
        r = await env.client.request(method, path, headers=ORIGIN | headers)
        assert_no_cors(r)
    preflight = ORIGIN | {
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "X-Api-Key",
    }
    r = await env.client.options(path, headers=preflight)
    assert r.status_code == 405
    assert_no_cors(r)


async def test_no_cors_headers_on_errors(env: Env) -> None:
    assert_no_cors(await env.client.get("/nope", headers=ORIGIN))
    r = await env.client.post(f"{URL}/custom/hello", content=b"x" * 200_000, headers=ORIGIN | env.auth())
    assert r.status_code == 413
    assert_no_cors(r)
    for _ in range(11):
        r = await env.client.get(URL, headers=ORIGIN | {"X-Api-Key": "guess", "X-Forwarded-For": "192.0.2.1"})
    assert r.status_code == 429
    assert_no_cors(r)


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
