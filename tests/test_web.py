"""Browser sessions and the page's assets, in-process: login, CSRF, fresh credentials,
lockout, logout, and the files the page is made of."""

from __future__ import annotations

import gzip
import re
import time

import pytest

from sysmenu.passwords import hash_password
from sysmenu.web import WEB
from tests.conftest import Env, until

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery staple"
SESSION = "sysmenu_session_P80"
CSRF = "csrf_token_P80"


@pytest.fixture
def passwords(env: Env) -> Env:
    env.store.accounts.set_password("admin", hash_password(PASSWORD))
    env.store.accounts.set_password("bob", hash_password(PASSWORD))
    return env


async def login(env: Env, user: str = "admin", password: str = PASSWORD) -> str:
    """Log in; return the session's CSRF token."""
    r = await env.client.post("/api/login", json={"user": user, "pass": password})
    assert r.status_code == 200, r.text
    return str(r.json()["csrf_token"])


async def test_login_sets_a_strict_httponly_session_cookie(passwords: Env) -> None:
    r = await passwords.client.post("/api/login", json={"user": "admin", "pass": PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "admin"
    assert "SYSTEM" in body["permissions"]
    assert body["fresh_until"] == pytest.approx(time.time() + 300, abs=5)
    cookies = {c.split("=", 1)[0]: c for c in r.headers.get_list("set-cookie")}
    session = cookies[SESSION].lower()
    assert "httponly" in session
    assert "samesite=strict" in session
    assert "path=/" in session
    csrf = cookies[CSRF].lower()
    assert "httponly" not in csrf  # OctoPrint's JavaScript client reads it
    assert "samesite=strict" in csrf
    assert f"{CSRF}={body['csrf_token']}".lower() in csrf
    # The session token is not the CSRF token, and neither is stored in clear.
    token = passwords.client.cookies[SESSION]
    assert token != body["csrf_token"]
    assert len(token) >= 43
    dump = "\n".join(passwords.store.db.conn.iterdump())
    assert token not in dump


async def test_session_cookie_is_secure_behind_an_https_proxy(passwords: Env) -> None:
    # The fixture's client is 127.0.0.1, a trusted proxy by default.
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "pi.example", "X-Script-Name": "/menu"}
    r = await passwords.client.post("/api/login", json={"user": "admin", "pass": PASSWORD}, headers=headers)
    assert r.status_code == 200
    cookies = [c.lower() for c in r.headers.get_list("set-cookie")]
    assert all("; secure" in c and "path=/menu" in c for c in cookies)
    assert cookies[0].startswith("sysmenu_session_p443_r|menu=")


@pytest.mark.parametrize(
    ("user", "password"),
    [("admin", "wrong"), ("nobody", PASSWORD), ("admin", ""), ("admin", PASSWORD + " ")],
)
async def test_wrong_login_is_403_and_sets_no_cookie(passwords: Env, user: str, password: str) -> None:
    r = await passwords.client.post("/api/login", json={"user": user, "pass": password})
    assert r.status_code == 403
    assert r.json() == {"error": "Wrong user name or password"}
    assert "set-cookie" not in r.headers
    assert passwords.store.audit.list()[0]["event"] == "login_failed"


async def test_user_without_password_cannot_log_in(env: Env) -> None:
    r = await env.client.post("/api/login", json={"user": "admin", "pass": ""})
    assert r.status_code in (400, 403)
    r = await env.client.post("/api/login", json={"user": "admin", "pass": "x"})
    assert r.status_code == 403


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("application/x-www-form-urlencoded", b"user=admin&pass=x", 415),
        ("text/plain", b'{"user": "admin", "pass": "x"}', 415),
        ("application/json", b"{not json", 400),
        ("application/json", b"[1, 2]", 400),
        ("application/json", b'{"user": 1, "pass": "x"}', 400),
        ("application/json", b'{"user": "admin"}', 400),
    ],
)
async def test_login_takes_only_a_json_object(
    passwords: Env, content_type: str, body: bytes, status: int
) -> None:
    r = await passwords.client.post("/api/login", content=body, headers={"Content-Type": content_type})
    assert r.status_code == status
    assert set(r.json()) == {"error"}


async def test_session_works_for_the_octoprint_api(passwords: Env) -> None:
    csrf = await login(passwords)
    r = await passwords.client.get("/api/system/commands")
    assert r.status_code == 200
    assert [c["action"] for c in r.json()["core"]][:1] == ["shutdown"]
    r = await passwords.client.post("/api/system/commands/custom/hello", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 204
    run = passwords.store.runs.list()[0]
    assert (run.user, run.auth, run.action) == ("admin", "session", "hello")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/system/commands/custom/hello"),
        ("POST", "/api/system"),
        ("POST", "/api/runs/1/kill"),
        ("POST", "/api/logout"),
    ],
)
@pytest.mark.parametrize("token", [None, "", "forged", "x" * 5000])
async def test_state_change_with_a_cookie_needs_the_csrf_token(
    passwords: Env, method: str, path: str, token: str | None
) -> None:
    await login(passwords)
    headers = {} if token is None else {"X-CSRF-Token": token}
    r = await passwords.client.request(method, path, headers=headers, data={"action": "hello"})
    assert r.status_code == 403
    assert "CSRF" in r.json()["error"]
    assert passwords.store.runs.list() == []
    # still logged in: a forged request does not end the session
    assert (await passwords.client.get("/api/currentuser")).json()["name"] == "admin"


async def test_api_key_requests_need_no_csrf_token_even_with_a_cookie(passwords: Env) -> None:
    await login(passwords, "bob")  # a session of a user without SYSTEM
    r = await passwords.client.post("/api/system/commands/custom/hello", headers=passwords.auth())
    assert r.status_code == 204
    assert passwords.store.runs.list()[0].auth == "apikey"


async def test_session_of_a_user_without_system_is_403(passwords: Env) -> None:
    csrf = await login(passwords, "bob")
    assert (await passwords.client.get("/api/system/commands")).status_code == 403
    r = await passwords.client.post("/api/system/commands/custom/hello", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403
    assert passwords.store.runs.list() == []


async def test_csrf_token_of_another_session_is_refused(passwords: Env) -> None:
    other = await login(passwords, "bob")
    await login(passwords, "admin")
    r = await passwords.client.post("/api/system/commands/custom/hello", headers={"X-CSRF-Token": other})
    assert r.status_code == 403


async def test_fresh_credentials_need_a_password_check_within_5_minutes(passwords: Env) -> None:
    csrf = await login(passwords)
    token = passwords.client.cookies[SESSION]
    headers = {"X-CSRF-Token": csrf}
    r = await passwords.client.post("/api/system/commands/core/shutdown", headers=headers)
    assert r.status_code == 204  # just logged in: fresh
    with passwords.store.db.transaction() as db:  # the login was 6 minutes ago
        db.execute("UPDATE sessions SET password_at = password_at - 360")
    assert passwords.client.cookies[SESSION] == token
    r = await passwords.client.post("/api/system/commands/core/shutdown", headers=headers)
    assert r.status_code == 403
    assert "password" in r.json()["error"]
    r = await passwords.client.post("/api/system/commands/core/reboot", headers=headers)
    assert r.status_code == 403
    # commands without fresh_credentials still run on an older session
    r = await passwords.client.post("/api/system/commands/custom/hello", headers=headers)
    assert r.status_code == 204
    # logging in again (the page's password prompt) makes the session fresh again
    csrf = await login(passwords)
    assert passwords.client.cookies[SESSION] != token  # a new session replaces the old
    r = await passwords.client.post("/api/system/commands/core/shutdown", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 204, r.text
    # an asynchronous command: answered at once, recorded once the first shutdown has ended
    await until(lambda: [r.action for r in passwords.store.runs.list()].count("shutdown") == 2)
    # the replaced session is over
    passwords.client.cookies.set(SESSION, token)
    assert (await passwords.client.get("/api/currentuser")).json()["name"] is None


async def test_api_keys_count_as_fresh(passwords: Env) -> None:
    r = await passwords.client.post("/api/system/commands/core/shutdown", headers=passwords.auth())
    assert r.status_code == 204


async def test_failed_logins_lock_out_one_address_only(passwords: Env) -> None:
    attacker = {"X-Forwarded-For": "203.0.113.9"}  # the fixture's peer is a trusted proxy
    guess = {"user": "admin", "pass": "guess"}
    for _ in range(10):
        r = await passwords.client.post("/api/login", json=guess, headers=attacker)
        assert r.status_code == 403
    r = await passwords.client.post("/api/login", json={"user": "admin", "pass": PASSWORD}, headers=attacker)
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert "Too many failed logins" in r.json()["error"]
    assert SESSION not in passwords.client.cookies
    # another address is not locked out
    r = await passwords.client.post(
        "/api/login", json={"user": "admin", "pass": PASSWORD}, headers={"X-Forwarded-For": "198.51.100.7"}
    )
    assert r.status_code == 200


async def test_logout_ends_the_session(passwords: Env) -> None:
    csrf = await login(passwords)
    token = passwords.client.cookies[SESSION]
    r = await passwords.client.post("/api/logout", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["name"] is None
    cleared = [c for c in r.headers.get_list("set-cookie") if c.startswith(SESSION)]
    assert cleared
    assert all("max-age=0" in c.lower() for c in cleared)
    passwords.client.cookies.set(SESSION, token)  # a client that keeps the old cookie
    assert (await passwords.client.get("/api/system/commands")).status_code == 403
    assert (await passwords.client.get("/api/currentuser")).json() == {
        "name": None,
        "groups": [],
        "permissions": [],
    }
    assert [e["event"] for e in passwords.store.audit.list()[:2]] == ["logout", "login"]


async def test_a_new_password_ends_the_users_sessions(passwords: Env) -> None:
    await login(passwords)
    assert (await passwords.client.get("/api/system/commands")).status_code == 200
    passwords.store.accounts.set_password("admin", hash_password("another one"))
    assert (await passwords.client.get("/api/system/commands")).status_code == 403


async def test_removing_a_user_ends_their_sessions(passwords: Env) -> None:
    await login(passwords)
    passwords.store.accounts.remove_user("admin")
    assert (await passwords.client.get("/api/system/commands")).status_code == 403


async def test_current_user(passwords: Env) -> None:
    r = await passwords.client.get("/api/currentuser", headers=passwords.auth())
    assert r.json()["name"] == "admin"
    assert "csrf_token" not in r.json()
    csrf = await login(passwords, "bob")
    r = await passwords.client.get("/api/currentuser")
    assert r.json()["name"] == "bob"
    assert r.json()["csrf_token"] == csrf
    assert r.json()["permissions"] == []


# -- the page's files --------------------------------------------------------------


async def test_page_is_served_with_a_strict_content_security_policy(env: Env) -> None:
    r = await env.client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    for asset in re.findall(r'(?:src|href)="([^"]+)"', r.text):
        assert asset.startswith("static/"), asset  # relative: works behind a path prefix
        assert (await env.client.get("/" + asset)).status_code == 200


async def test_assets_are_compressed_and_cached_by_etag(env: Env) -> None:
    r = await env.client.get("/static/app.js", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert r.content == (WEB / "app.js").read_bytes()  # httpx undid the gzip
    raw = await env.client.get("/static/app.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers
    again = await env.client.get("/static/app.js", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


@pytest.mark.parametrize("name", ["nothing.js", "index.html", "..%2fapp.py", "app.py", "__init__.py"])
async def test_unknown_assets_are_404(env: Env, name: str) -> None:
    r = await env.client.get(f"/static/{name}")
    assert r.status_code == 404
    assert set(r.json()) == {"error"}


def test_assets_are_small_and_load_nothing_from_elsewhere() -> None:
    files = [p for p in WEB.iterdir() if p.is_file()]
    assert {p.name for p in files} >= {"index.html", "app.js", "style.css", "favicon.svg"}
    total = sum(len(gzip.compress(p.read_bytes())) for p in files)
    assert total < 40_000, total  # the whole page, compressed
    for path in files:
        text = path.read_text()
        # the only absolute URL allowed is the SVG namespace (a name, never fetched)
        for url in re.findall(r"https?://[^\s\"')]+|(?<=[\"'(=])//[a-z0-9.-]+", text, re.I):
            assert url == "http://www.w3.org/2000/svg", (path.name, url)
        assert "@import" not in text
        assert "fonts.googleapis" not in text


class Verifications:
    """Counts the password verifications running at once (they run in threads), and may
    hold each one until the test lets them go."""

    def __init__(self) -> None:
        import threading

        from sysmenu import passwords

        self._verify = passwords.verify_password
        self.lock = threading.Lock()
        self.go = threading.Event()
        self.go.set()
        self.inside = self.most_at_once = 0

    def __call__(self, stored: str, password: str) -> bool:
        with self.lock:
            self.inside += 1
            self.most_at_once = max(self.most_at_once, self.inside)
        try:
            assert self.go.wait(10), "never let go"
            return self._verify(stored, password)
        finally:
            with self.lock:
                self.inside -= 1


async def test_simultaneous_logins_are_counted_before_checking_and_two_at_most_run(
    passwords: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from sysmenu import logins
    from sysmenu.state import State

    state: State = passwords.app.state.sysmenu  # type: ignore[union-attr]
    checks = Verifications()
    monkeypatch.setattr(logins, "verify_password", checks)
    attacker = {"X-Forwarded-For": "203.0.113.30"}
    guess = {"user": "admin", "pass": "guess"}
    answers = await asyncio.gather(
        *(passwords.client.post("/api/login", json=guess, headers=attacker) for _ in range(30))
    )
    codes = sorted(r.status_code for r in answers)
    assert codes.count(403) == 10 and codes.count(429) == 20, codes
    assert checks.most_at_once <= 2
    # Twelve at once, each held inside its check: two run, the ten others wait for a turn.
    checks.go.clear()
    many = [{"X-Forwarded-For": f"198.18.0.{i + 1}"} for i in range(12)]
    pending = asyncio.gather(*(passwords.client.post("/api/login", json=guess, headers=h) for h in many))
    async with asyncio.timeout(10):
        while not (checks.inside == 2 and state.password_checks.waiting == 10):
            await asyncio.sleep(0.01)
    checks.go.set()
    answers = await pending
    assert {r.status_code for r in answers} == {403}
    assert checks.most_at_once == 2


async def test_failed_logins_audit_a_placeholder_for_names_no_user_has(passwords: Env) -> None:
    for name in ("hunter2 my password", "admin"):
        r = await passwords.client.post("/api/login", json={"user": name, "pass": "wrong"})
        assert r.status_code == 403
    failed = [e["user"] for e in passwords.store.audit.list() if e["event"] == "login_failed"]
    assert failed == ["admin", "(unknown user)"]


async def test_a_correct_password_from_another_address_always_works(passwords: Env) -> None:
    for i in range(40):  # many addresses guessing one name: none of it locks the name
        headers = {"X-Forwarded-For": f"203.0.113.{i + 1}"}
        await passwords.client.post("/api/login", json={"user": "admin", "pass": "guess"}, headers=headers)
    r = await passwords.client.post(
        "/api/login", json={"user": "admin", "pass": PASSWORD}, headers={"X-Forwarded-For": "198.51.100.50"}
    )
    assert r.status_code == 200
