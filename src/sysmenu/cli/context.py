"""The CLI's shared context: the config and the store, opened on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ..config import Config
    from ..models import Who
    from ..store import Store

CONFIG_ENV = "SYSMENU_CONFIG"


class Context:
    def __init__(self, config_path: str | None, data_dir: str | None) -> None:
        self.config_path = config_path
        self.data_dir = data_dir
        self._config: Config | None = None
        self._store: Store | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            from ..config import load, replace

            config = load(self.config_path)
            if self.data_dir:
                from pathlib import Path

                settings = replace(config.sysmenu, data_dir=Path(self.data_dir))
                config = replace(config, sysmenu=settings)
            self._config = config
        return self._config

    @property
    def store(self) -> Store:
        if self._store is None:
            from ..store import DATABASE_FILE, Store

            self._store = Store(self.config.data_dir() / DATABASE_FILE)
        return self._store

    @property
    def who(self) -> Who:
        """Who acts from the command line, for the audit log: the local account."""
        import getpass

        from ..models import Who

        return Who(getpass.getuser(), "cli", "local")


pass_ctx = click.make_pass_decorator(Context)


def cli_error(exc: Exception) -> click.ClickException | None:
    """The one mapping of sysmenu's errors to what the CLI prints (None: not ours)."""
    from ..errors import ConfigError, StoreError, SysmenuError

    if isinstance(exc, ConfigError):
        return click.ClickException(f"invalid configuration:\n{exc}")
    if isinstance(exc, SysmenuError):
        return click.ClickException(exc.message)
    if isinstance(exc, StoreError):
        return click.ClickException(str(exc))
    return None


class Group(click.Group):
    """The ``sysmenu`` group: errors of any of its commands leave through `cli_error`."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except click.ClickException:
            raise
        except Exception as exc:
            mapped = cli_error(exc)
            if mapped is None:
                raise
            raise mapped from None
