"""The database file under a running store: deleted, replaced, put back."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from sysmenu.store import Store


def test_deleted_file_refuses_writes_and_is_never_recreated(tmp_path: Path) -> None:
    path = tmp_path / "sysmenu.db"
    store = Store(path)
    store.accounts.add_user("admin", ["admins"])
    os.link(path, tmp_path / "backup.db")
    path.unlink()
    with pytest.raises(sqlite3.OperationalError, match="was deleted"):
        store.accounts.add_user("bob", [])
    assert store.accounts.get_user("admin") is not None  # what can be read is still served
    assert not path.exists()
    assert "was deleted" in str(store.db.check_file()["error"])
    os.link(tmp_path / "backup.db", path)  # the same file back
    assert store.db.check_file()["error"] is None
    store.accounts.add_user("bob", [])
    assert [u.name for u in Store(path).accounts.list_users()] == ["admin", "bob"]


def test_another_file_put_in_its_place_waits_for_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "sysmenu.db"
    store = Store(path)
    store.accounts.add_user("admin", ["admins"])
    other = Store(tmp_path / "other.db")
    other.accounts.add_user("restored", [])
    other.close()
    shutil.move(tmp_path / "other.db", path)
    with pytest.raises(sqlite3.OperationalError, match="replaced by another file"):
        store.accounts.add_user("bob", [])
    assert "restart" in str(store.db.check_file()["error"])
    store.close()
    assert [u.name for u in Store(path).accounts.list_users()] == ["restored"]


def test_a_file_that_is_no_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sysmenu.db"
    store = Store(path)
    junk = tmp_path / "junk"
    junk.write_bytes(b"")
    junk.replace(path)
    with pytest.raises(sqlite3.OperationalError, match="replaced"):
        store.accounts.add_user("bob", [])
    assert path.read_bytes() == b""
