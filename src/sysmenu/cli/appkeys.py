"""CLI commands about apps' key requests: ``key requests``, ``key approve``, ``key deny``
(added to the ``key`` group of accounts.py)."""

from __future__ import annotations

import getpass
import time
from typing import TYPE_CHECKING

import click

from ..models import Who
from .accounts import key
from .context import Context, pass_ctx

if TYPE_CHECKING:
    from ..appkeys import AppKeys, AppRequest


def _keys(ctx: Context) -> AppKeys:
    from ..appkeys import AppKeys

    return AppKeys(ctx.store)


def _pending(ctx: Context, ident: str) -> AppRequest:
    request = _keys(ctx).find(ident)
    if request is None:
        raise click.ClickException(f"no pending key request {ident!r} (it was decided, or it expired)")
    return request


def _decide(ctx: Context, ident: str, approve: bool, user_name: str | None) -> None:
    request = _pending(ctx, ident)
    if request.user is not None and user_name not in (None, request.user):
        raise click.ClickException(
            f"request {request.id} asks for a key of {request.user!r}, not {user_name!r}"
        )
    owner = request.user or user_name
    if approve:
        if owner is None:
            raise click.ClickException(f"request {request.id} names no user: say whose key it is with --user")
        if ctx.store.accounts.get_user(owner) is None:
            raise click.ClickException(f"no user {owner!r}")
    decided_by = owner or getpass.getuser()
    if not _keys(ctx).decide(request, approve, decided_by):
        raise click.ClickException(f"request {request.id} is no longer pending")
    event = "appkey_approved" if approve else "appkey_denied"
    who = Who(decided_by, "cli", None)
    ctx.store.audit.record(event, who, app=request.app, request=request.id, requested_from=request.client,
                           by=getpass.getuser())  # fmt: skip
    if approve:
        click.echo(f"approved: {request.app!r} gets a key of {owner} at its next poll")
    else:
        click.echo(f"denied: {request.app!r}")


@key.command("requests")
@pass_ctx
def key_requests(ctx: Context) -> None:
    """List apps' pending key requests (Application Keys flow)."""
    pending = _keys(ctx).pending()
    if not pending:
        click.echo("no pending key requests")
    for r in pending:
        asked = time.strftime("%H:%M:%S", time.localtime(r.created))
        click.echo(f"{r.id:4}  {r.app!r} from {r.client or '?'} at {asked}, for user {r.user or '(any)'}")


@key.command("approve")
@click.argument("ident", metavar="ID")
@click.option("--user", "user_name", help="Whose key it becomes (when the request names no user).")
@pass_ctx
def key_approve(ctx: Context, ident: str, user_name: str | None) -> None:
    """Approve a pending key request: the app gets a new key of the user, named after it."""
    _decide(ctx, ident, True, user_name)


@key.command("deny")
@click.argument("ident", metavar="ID")
@pass_ctx
def key_deny(ctx: Context, ident: str) -> None:
    """Deny a pending key request."""
    _decide(ctx, ident, False, None)
