"""Users, their groups and their API keys (stored hashed), with the key cache.

The server looks a key up on every request, so the active keys are kept in
memory. The cache is valid while the database's `data_version` (which any
commit changes, the CLI's too) is the one it was loaded at; checking that needs
no lock and no thread, so a valid cache answers on the event loop.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

from .access import PERMISSIONS, Scope
from .database import Database
from .errors import StoreError
from .models import GROUPS, ApiKey, User

KEY_PREFIX_LEN = 8


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class Accounts:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._keys: dict[str, list[tuple[str, User, Scope]]] = {}
        self._loaded_at: int | None = None  # the data_version the cache was loaded at

    @contextmanager
    def _changing(self) -> Iterator[sqlite3.Connection]:
        """A transaction that may change users or keys: the key cache goes with it
        (this connection's own changes do not show in ``PRAGMA data_version``)."""
        try:
            with self.db.transaction() as conn:
                yield conn
        finally:
            self._loaded_at = None

    # -- users -----------------------------------------------------------

    def _user(self, row: sqlite3.Row) -> User:
        conn = self.db.conn
        groups = tuple(
            r[0]
            for r in conn.execute(
                "SELECT group_name FROM user_groups WHERE user_id=? ORDER BY group_name", (row["id"],)
            )
        )
        perms: set[str] = set()
        for group in groups:
            (raw,) = conn.execute("SELECT permissions FROM groups WHERE name=?", (group,)).fetchone()
            perms.update(json.loads(raw))
        return User(row["id"], row["name"], groups, frozenset(perms), row["password_hash"] is not None)

    def add_user(
        self,
        name: str,
        groups: list[str],
        password_hash: str | None = None,
        config_groups: Mapping[str, Iterable[str]] | None = None,
    ) -> User:
        """Add user `name` in `groups`: built-in ones, ones in the database, or ones of
        `config_groups` (``sysmenu.groups``; they are entered in the database then)."""
        if not name or name != name.strip():
            raise StoreError(f"invalid user name {name!r}")
        self._check_groups(groups, config_groups)
        with self._changing() as conn:
            self._enter_groups(conn, groups, config_groups)
            try:
                cur = conn.execute(
                    "INSERT INTO users(name, password_hash, created) VALUES (?, ?, ?)",
                    (name, password_hash, time.time()),
                )
            except sqlite3.IntegrityError:
                raise StoreError(f"user {name!r} exists already") from None
            for group in groups:
                conn.execute("INSERT INTO user_groups VALUES (?, ?)", (cur.lastrowid, group))
        user = self.get_user(name)
        assert user is not None
        return user

    def _check_groups(self, groups: Iterable[str], config_groups: Mapping[str, Iterable[str]] | None) -> None:
        known = {*self.list_groups(), *(config_groups or {})}
        unknown = [g for g in groups if g not in known]
        if unknown:
            raise StoreError(f"unknown group {unknown[0]!r} (known: {', '.join(sorted(known))})")

    @staticmethod
    def _enter_groups(
        conn: sqlite3.Connection, groups: Iterable[str], config_groups: Mapping[str, Iterable[str]] | None
    ) -> None:
        """Config groups a user joins get a row (the config, not the row, says what they grant)."""
        for group in groups:
            if group in (config_groups or {}):
                conn.execute(
                    "INSERT INTO groups(name, permissions) VALUES (?, '[]') ON CONFLICT(name) DO NOTHING",
                    (group,),
                )

    def set_groups(
        self,
        name: str,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        config_groups: Mapping[str, Iterable[str]] | None = None,
    ) -> User:
        """Put user `name` in the groups `add` and out of `remove`; return the user."""
        add, remove = list(add), list(remove)
        self._check_groups(add, config_groups)
        with self._changing() as conn:
            row = conn.execute("SELECT id FROM users WHERE name=?", (name,)).fetchone()
            if row is None:
                raise StoreError(f"no user {name!r}")
            self._enter_groups(conn, add, config_groups)
            for group in add:
                conn.execute("INSERT OR IGNORE INTO user_groups VALUES (?, ?)", (row[0], group))
            for group in remove:
                conn.execute("DELETE FROM user_groups WHERE user_id=? AND group_name=?", (row[0], group))
        user = self.get_user(name)
        assert user is not None
        return user

    # -- groups ----------------------------------------------------------

    def list_groups(self) -> dict[str, tuple[str, ...]]:
        """Every group the database knows, with the permissions it grants there."""
        rows = self.db.conn.execute("SELECT name, permissions FROM groups ORDER BY name")
        return {name: tuple(json.loads(perms)) for name, perms in rows}

    def group_members(self) -> dict[str, list[str]]:
        members: dict[str, list[str]] = {}
        for group, user in self.db.conn.execute(
            "SELECT g.group_name, u.name FROM user_groups g JOIN users u ON u.id = g.user_id ORDER BY u.name"
        ):
            members.setdefault(group, []).append(user)
        return members

    def add_group(self, name: str, permissions: Iterable[str]) -> None:
        perms = list(dict.fromkeys(permissions))
        if not name or name != name.strip():
            raise StoreError(f"invalid group name {name!r}")
        if bad := [p for p in perms if p not in PERMISSIONS]:
            raise StoreError(f"unknown permission {bad[0]!r} (known: {', '.join(PERMISSIONS)})")
        with self._changing() as conn:
            try:
                conn.execute("INSERT INTO groups(name, permissions) VALUES (?, ?)", (name, json.dumps(perms)))
            except sqlite3.IntegrityError:
                raise StoreError(f"group {name!r} exists already") from None

    def remove_group(self, name: str) -> None:
        if name in GROUPS:
            raise StoreError(f"{name!r} is a built-in group")
        with self._changing() as conn:
            members = conn.execute("SELECT count(*) FROM user_groups WHERE group_name=?", (name,)).fetchone()[
                0
            ]
            if members:
                raise StoreError(f"group {name!r} still has {members} member(s): remove them first")
            if conn.execute("DELETE FROM groups WHERE name=?", (name,)).rowcount == 0:
                raise StoreError(f"no group {name!r}")

    def get_user(self, name: str) -> User | None:
        row = self.db.conn.execute("SELECT * FROM users WHERE name=?", (name,)).fetchone()
        return self._user(row) if row else None

    def user_by_id(self, user_id: int) -> User | None:
        row = self.db.conn.execute("SELECT * FROM users WHERE id=?", (user_id,)).fetchone()
        return self._user(row) if row else None

    def password_hash(self, name: str) -> str | None:
        row = self.db.conn.execute("SELECT password_hash FROM users WHERE name=?", (name,)).fetchone()
        return row[0] if row else None

    def set_password(self, name: str, password_hash: str) -> None:
        with self._changing() as conn:
            cur = conn.execute("UPDATE users SET password_hash=? WHERE name=?", (password_hash, name))
            if cur.rowcount == 0:
                raise StoreError(f"no user {name!r}")
            # A new password ends every session opened with the old one.
            conn.execute("DELETE FROM sessions WHERE user_id=(SELECT id FROM users WHERE name=?)", (name,))

    def list_users(self) -> list[User]:
        return [self._user(r) for r in self.db.conn.execute("SELECT * FROM users ORDER BY name")]

    def remove_user(self, name: str) -> None:
        with self._changing() as conn:
            cur = conn.execute("DELETE FROM users WHERE name=?", (name,))
            if cur.rowcount == 0:
                raise StoreError(f"no user {name!r}")

    def count_users(self) -> int:
        return int(self.db.conn.execute("SELECT count(*) FROM users").fetchone()[0])

    # -- API keys --------------------------------------------------------

    def create_key(self, user_name: str, name: str = "default", scope: str | None = None) -> str:
        """Create a key for `user_name`, narrowed to `scope` (see `access.Scope`); return
        the key itself (shown once, stored hashed)."""
        user = self.get_user(user_name)
        if user is None:
            raise StoreError(f"no user {user_name!r}")
        key = secrets.token_urlsafe(32)  # 256 bits
        with self._changing() as conn:
            conn.execute(
                "INSERT INTO api_keys(user_id, name, prefix, digest, created, scope) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (user.id, name, key[:KEY_PREFIX_LEN], digest(key), time.time(), scope),
            )
        return key

    def list_keys(self, user_name: str | None = None) -> list[ApiKey]:
        sql = (
            "SELECT k.id, u.name AS user, k.name, k.prefix, k.created, k.revoked, k.scope "
            "FROM api_keys k JOIN users u ON u.id = k.user_id"
        )
        args: tuple[str, ...] = ()
        if user_name is not None:
            sql += " WHERE u.name = ?"
            args = (user_name,)
        return [ApiKey(**dict(r)) for r in self.db.conn.execute(sql + " ORDER BY k.id", args)]

    def revoke_key(self, ident: str) -> int:
        """Revoke by numeric id or by key prefix; return how many keys were revoked."""
        with self._changing() as conn:
            if ident.isdigit():
                cur = conn.execute(
                    "UPDATE api_keys SET revoked=? WHERE id=? AND revoked IS NULL", (time.time(), int(ident))
                )
            else:
                cur = conn.execute(
                    "UPDATE api_keys SET revoked=? WHERE prefix=? AND revoked IS NULL",
                    (time.time(), ident[:KEY_PREFIX_LEN]),
                )
            count = cur.rowcount
        if count == 0:
            raise StoreError(f"no active key {ident!r}")
        return count

    def keys_current(self) -> bool:
        """Whether the key cache holds what the database holds (no SQL, no waiting)."""
        version = self.db.data_version()
        return version is not None and version == self._loaded_at

    def load_keys(self) -> None:
        """Read the active keys and their owners into the cache (SQL: the database thread)."""
        version = self.db.data_version()  # before reading: a change meanwhile shows next time
        users = {u.id: u for u in self.list_users()}
        keys: dict[str, list[tuple[str, User, Scope]]] = {}
        rows = self.db.conn.execute(
            "SELECT user_id, prefix, digest, scope FROM api_keys WHERE revoked IS NULL"
        )
        for row in rows:
            try:
                scope = Scope.parse(row["scope"])
            except ValueError:  # written by a newer sysmenu: the key is worth nothing here
                continue
            keys.setdefault(row["prefix"], []).append((row["digest"], users[row["user_id"]], scope))
        self._keys, self._loaded_at = keys, version

    def user_for_key(self, key: str) -> User | None:
        """The owner of an active key, loading the keys first if they changed (SQL)."""
        if not self.keys_current():
            self.load_keys()
        return self.cached_user_for_key(key)

    def cached_user_for_key(self, key: str) -> User | None:
        """The owner of an active key by the cache as it is, whatever the key's scope."""
        owner = self.cached_key_owner(key)
        return owner[0] if owner else None

    def cached_key_owner(self, key: str) -> tuple[User, Scope] | None:
        """The owner of an active key and the key's scope, by the cache as it is, compared
        in constant time; else None. Callers check `keys_current` (or load) first."""
        candidates = self._keys.get(key[:KEY_PREFIX_LEN], ())
        presented = digest(key)
        found = None
        for stored, user, scope in candidates:
            if hmac.compare_digest(stored, presented):
                found = (user, scope)
        return found
