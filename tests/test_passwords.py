"""Passwords are argon2id at a pinned production cost; the suite hashes at a cheap cost."""

from __future__ import annotations

import subprocess
import sys

from sysmenu import passwords
from sysmenu.passwords import PRODUCTION, Cost, hash_password, hasher, verify_password


def test_production_cost_is_pinned_and_real() -> None:
    assert Cost(time_cost=2, memory_cost=19 * 1024, parallelism=1) == PRODUCTION
    stored = hasher(PRODUCTION).hash("correct horse")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert verify_password(stored, "correct horse")
    assert not verify_password(stored, "wrong horse")


def test_sysmenu_hashes_at_the_production_cost_outside_the_tests() -> None:
    code = "from sysmenu.passwords import hash_password; print(hash_password('x'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_the_suites_cheap_hashes_are_still_argon2id() -> None:
    assert passwords.COST != PRODUCTION  # set by tests/conftest.py
    stored = hash_password("pw")
    assert stored.startswith("$argon2id$v=19$")
    assert verify_password(stored, "pw") and not verify_password(stored, "pW")
    assert not verify_password(passwords.decoy_hash(), "pw")


def test_foreign_and_missing_hashes_verify_nothing() -> None:
    assert not verify_password(None, "x")
    assert not verify_password("$pbkdf2-sha256$29000$abc", "x")
