"""The first start: an `admin` user with a random password and an API key, shown once.

Under a service manager stdout is the journal, which more than the service user can
read; so the credentials are printed only when stdout is a terminal, and otherwise
written to a file only the service user can read, whose path is printed.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..access import ADMINS, FULL_SCOPE

if TYPE_CHECKING:
    from ..models import Who
    from ..store import Store

CREDENTIALS_FILE = "first-start-credentials.txt"


def first_start(store: Store, data_dir: Path, who: Who) -> None:
    from ..accounts import KEY_PREFIX_LEN
    from ..files import private_file
    from ..passwords import hash_password

    password = secrets.token_urlsafe(12)
    store.accounts.add_user("admin", [ADMINS], hash_password(password))
    store.audit.record("user-added", who, name="admin", groups=[ADMINS])
    key = store.accounts.create_key("admin", "first start")
    store.audit.record(
        "key-created", who, name="admin", key="first start", prefix=key[:KEY_PREFIX_LEN], scope=FULL_SCOPE
    )
    text = (
        "First start: created user 'admin' (group admins).\n"
        f"  password: {password}\n"
        f"  API key:  {key}\n"
        "Both are stored hashed: this is the only copy.\n"
    )
    if sys.stdout.isatty():
        click.echo(text, nl=False)
        return
    path = data_dir / CREDENTIALS_FILE
    private_file(path)
    path.write_text(text)
    click.echo(f"First start: created user 'admin'; its password and API key are in {path}")
    click.echo("(readable by this account only: read them, then delete the file)")
