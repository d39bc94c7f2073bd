"""CLI commands about users and API keys: ``user ...``, ``key ...``. Every change is audited."""

from __future__ import annotations

import time

import click

from ..access import BUILTIN_GROUPS, FULL_SCOPE, READ_SCOPE, SCOPES, USERS
from .context import Context, pass_ctx
from .table import echo_table

# "admins (ADMIN,SYSTEM), operators (SYSTEM), viewers (READ), users"
_BUILTIN = ", ".join(f"{g} ({','.join(sorted(p))})" if p else g for g, p in BUILTIN_GROUPS.items())


@click.group()
def user() -> None:
    """Manage users."""


@user.command("add")
@click.argument("name")
@click.option(
    "--group",
    "groups",
    multiple=True,
    default=[USERS],
    show_default=True,
    help=f"Group(s), repeatable: {_BUILTIN}, or a config/CLI group.",
)
@click.option("--password", help="Password (prompted for when not given; '-' for none).")
@pass_ctx
def user_add(ctx: Context, name: str, groups: tuple[str, ...], password: str | None) -> None:
    """Add user NAME."""
    from ..passwords import hash_password
    from ..policy import name_problem

    problem = name_problem(name)
    if problem is not None:
        raise click.ClickException(problem)
    if password is None:
        password = _prompt_password(name)
    elif password != "-":
        _check_password(name, password)
    hashed = None if password == "-" else hash_password(password)
    added = ctx.store.accounts.add_user(name, list(groups), hashed, ctx.config.sysmenu.groups)
    ctx.store.audit.record("user-added", ctx.who, name=added.name, groups=list(added.groups))
    click.echo(f"added user {added.name} ({', '.join(added.groups)})")


@user.command("groups")
@click.argument("name")
@click.option("--add", "add", multiple=True, metavar="GROUP", help="Put the user in GROUP (repeatable).")
@click.option(
    "--remove", "remove", multiple=True, metavar="GROUP", help="Take the user out of GROUP (repeatable)."
)
@pass_ctx
def user_groups(ctx: Context, name: str, add: tuple[str, ...], remove: tuple[str, ...]) -> None:
    """Show or change the groups of user NAME."""
    accounts = ctx.store.accounts
    if add or remove:
        changed = accounts.set_groups(name, add, remove, ctx.config.sysmenu.groups)
        groups = list(changed.groups)
        ctx.store.audit.record(
            "user-groups", ctx.who, name=name, added=list(add), removed=list(remove), groups=groups
        )
    found = accounts.get_user(name)
    if found is None:
        raise click.ClickException(f"no user {name!r}")
    click.echo(f"{found.name}: {', '.join(found.groups) or '-'}")


def _check_password(name: str, password: str) -> None:
    from ..policy import password_problem

    problem = password_problem(name, password)
    if problem is not None:
        raise click.ClickException(problem)


def _prompt_password(name: str) -> str:
    """Ask until the password is good enough (a terminal user gets another try)."""
    from ..policy import password_problem

    while True:
        password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        problem = password_problem(name, password)
        if problem is None:
            return password
        click.echo(problem, err=True)


@user.command("passwd")
@click.argument("name")
@click.option("--password", help="New password (prompted for when not given).")
@pass_ctx
def user_passwd(ctx: Context, name: str, password: str | None) -> None:
    """Set the password of user NAME."""
    from ..passwords import hash_password

    if password is None:
        password = _prompt_password(name)
    else:
        _check_password(name, password)
    ctx.store.accounts.set_password(name, hash_password(password))
    ctx.store.audit.record("password-set", ctx.who, name=name)
    click.echo(f"password of {name} set")


@user.command("list")
@pass_ctx
def user_list(ctx: Context) -> None:
    """List users, their groups and permissions (from built-in, config and CLI groups)."""
    from ..access import Policy

    policy = Policy(ctx.config.sysmenu.groups)
    rows = []
    for u in ctx.store.accounts.list_users():
        perms = ",".join(sorted(policy.permissions(u.groups) | u.permissions)) or "-"
        rows.append((u.name, ",".join(u.groups) or "-", perms))
    echo_table(("USER", "GROUPS", "PERMISSIONS"), rows)


@user.command("remove")
@click.argument("name")
@pass_ctx
def user_remove(ctx: Context, name: str) -> None:
    """Remove user NAME and their keys."""
    ctx.store.accounts.remove_user(name)
    ctx.store.audit.record("user-removed", ctx.who, name=name)
    click.echo(f"removed user {name}")


@click.group()
def key() -> None:
    """Manage API keys."""


def _only(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    return None if value is None else value.split(",")


@key.command("create")
@click.argument("user_name", metavar="USER")
@click.option("--name", default="default", show_default=True, help="A label for the key.")
@click.option(
    "--scope",
    type=click.Choice(SCOPES),
    default=FULL_SCOPE,
    show_default=True,
    help=f"{READ_SCOPE}: the key lists commands and reads history, and runs nothing.",
)
@click.option(
    "--only",
    metavar="SOURCE:ACTION,...",
    callback=_only,
    help="The key may run just these commands (of those its user may run), e.g. custom:backup,custom:status.",
)
@pass_ctx
def key_create(ctx: Context, user_name: str, name: str, scope: str, only: list[str] | None) -> None:
    """Create an API key for USER and print it (it is shown only once)."""
    from ..access import Scope
    from ..accounts import KEY_PREFIX_LEN

    try:
        stored = Scope.text(scope == READ_SCOPE, only)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--scope/--only") from None
    key_text = ctx.store.accounts.create_key(user_name, name, stored)
    described = Scope.parse(stored).describe()
    ctx.store.audit.record(
        "key-created", ctx.who, name=user_name, key=name, prefix=key_text[:KEY_PREFIX_LEN], scope=described
    )
    click.echo(key_text)


@key.command("list")
@click.argument("user_name", metavar="[USER]", required=False)
@pass_ctx
def key_list(ctx: Context, user_name: str | None) -> None:
    """List API keys with their scope (their prefixes; keys themselves are not stored)."""
    from ..access import Scope

    rows = []
    for k in ctx.store.accounts.list_keys(user_name):
        state = "revoked" if k.revoked else "active"
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(k.created))
        try:
            scope = Scope.parse(k.scope).describe()
        except ValueError:
            scope = f"unknown ({k.scope})"
        rows.append((str(k.id), f"{k.prefix}…", k.user, k.name, created, state, scope))
    echo_table(("ID", "PREFIX", "USER", "NAME", "CREATED", "STATE", "SCOPE"), rows)


class _DashedArgument(click.Command):
    """Keys and key prefixes may start with '-': an argument that is not exactly one of the
    command's options is the key, wherever it is (``-hAbCdEf`` is a prefix, ``-h`` is help)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        known = {o for p in self.get_params(ctx) for o in getattr(p, "opts", [])}
        dashed = [a for a in args if a.startswith("-") and a.split("=", 1)[0] not in known and a != "--"]
        if dashed and "--" not in args:
            args = [a for a in args if a not in dashed] + ["--", *dashed]
        return super().parse_args(ctx, args)


@key.command("revoke", cls=_DashedArgument)
@click.argument("ident", metavar="ID|PREFIX")
@pass_ctx
def key_revoke(ctx: Context, ident: str) -> None:
    """Revoke a key by its id, its prefix (the 8 characters `key list` shows) or the key itself.

    Prefixes may start with '-': `sysmenu key revoke -7Nod9DT` works as typed."""
    from ..accounts import KEY_PREFIX_LEN

    if not ident.isdigit() and len(ident) < KEY_PREFIX_LEN:
        raise click.ClickException(
            f"{ident!r} is neither a key id nor a key prefix: a prefix is {KEY_PREFIX_LEN} characters "
            "(see `sysmenu key list`)"
        )
    count = ctx.store.accounts.revoke_key(ident)
    ctx.store.audit.record("key-revoked", ctx.who, key=ident, count=count)
    click.echo(f"revoked {count} key(s)")
