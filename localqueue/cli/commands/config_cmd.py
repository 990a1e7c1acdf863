"""``localqueue config``: the YAML settings file."""

from __future__ import annotations

from typing import Annotated

import typer

from localqueue.cli.config import (
    KEYS,
    Settings,
    check_setting,
    config_path,
    load_settings,
    save_settings,
    with_setting,
)
from localqueue.cli.errors import CliError, remember_url
from localqueue.cli.options import (
    FormatOpt,
    RetryStoreOpt,
    RetryStorePathOpt,
    StoreOpt,
    StorePathOpt,
)
from localqueue.cli.output import Format, Printer

__all__ = ["config_app"]

config_app = typer.Typer(
    help="Read and write the settings file (default stores).", no_args_is_help=True
)


def _show(settings: Settings, fmt: Format) -> None:
    Printer(fmt).record(
        {"path": str(config_path()), **settings.as_dict()}, title="localqueue settings"
    )


@config_app.command("init")
def init(
    store: StoreOpt = None,
    store_path: StorePathOpt = None,
    retry_store: RetryStoreOpt = None,
    retry_store_path: RetryStorePathOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing settings file.")
    ] = False,
    fmt: FormatOpt = Format.JSON,
) -> None:
    """Create the settings file with the given stores."""
    path = config_path()
    if path.exists() and not force:
        raise CliError(f"{path} already exists; use 'config set' or pass --force")
    for url_flag, path_flag, what in (
        (store, store_path, "store"),
        (retry_store, retry_store_path, "retry-store"),
    ):
        if url_flag is not None and path_flag is not None:
            raise CliError(f"pass either --{what} or --{what}-path, not both")
    settings = Settings(
        store=store,
        store_path=store_path,
        retry_store=retry_store,
        retry_store_path=retry_store_path,
    )
    for key, value in settings.as_dict(redacted=False).items():
        remember_url(value)
        check_setting(key, value)
    save_settings(settings, path)
    _show(settings, fmt)


@config_app.command("show")
def show(fmt: FormatOpt = Format.JSON) -> None:
    """Print the settings file's path and values (passwords masked)."""
    _show(load_settings(), fmt)


@config_app.command("set")
def set_(
    key: Annotated[str, typer.Argument(metavar="KEY", help=f"One of: {', '.join(KEYS)}.")],
    value: Annotated[str, typer.Argument(metavar="VALUE", help="A store URL or a SQLite path.")],
    fmt: FormatOpt = Format.JSON,
) -> None:
    """Set one setting, checked as the commands would read it; store and store_path
    are two spellings of one setting, so setting one removes the other."""
    remember_url(value)
    check_setting(key, value)
    settings = with_setting(load_settings(), key, value)
    save_settings(settings)
    _show(settings, fmt)


@config_app.command("path")
def path(fmt: FormatOpt = Format.JSON) -> None:
    """Print where the settings file is, and whether it exists."""
    where = config_path()
    Printer(fmt).record({"path": str(where), "exists": where.exists()})
