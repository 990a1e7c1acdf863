"""The YAML settings file and how commands pick their stores.

The file lives at ``$XDG_CONFIG_HOME/localqueue/config.yaml`` (by default
``~/.config/localqueue/config.yaml``) and holds at most these keys:

* ``store``: the queue store URL (``store_path`` is the SQLite-file spelling);
* ``retry_store``: the attempt store URL (``retry_store_path`` likewise).

A store is chosen from, in order: the command's flag, the settings file, the
library default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from localqueue.cli import exit_codes
from localqueue.cli.errors import CliError, remember_url
from localqueue.queue import DEFAULT_QUEUE_STORE_PATH
from localqueue.retry import DEFAULT_RETRY_STORE_PATH
from localqueue.urls import redact

__all__ = [
    "DEFAULT_RETRY_STORE_PATH",
    "KEYS",
    "Settings",
    "config_path",
    "load_settings",
    "resolve_retry_store",
    "resolve_store",
    "save_settings",
    "with_setting",
]

# Each setting has a URL key and a SQLite-path key; they are two spellings of one setting.
_PAIRS = {"store": "store_path", "retry_store": "retry_store_path"}
KEYS = ("store", "store_path", "retry_store", "retry_store_path")
"""The keys the settings file accepts."""


def config_path() -> Path:
    """Where the settings file is (whether or not it exists)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "localqueue" / "config.yaml"


@dataclass(frozen=True)
class Settings:
    """The settings file's values (``None`` when not set)."""

    store: str | None = None
    store_path: str | None = None
    retry_store: str | None = None
    retry_store_path: str | None = None

    def as_dict(self, *, redacted: bool = True) -> dict[str, str]:
        """The values that are set, passwords masked unless ``redacted`` is false."""
        values = {key: getattr(self, key) for key in KEYS if getattr(self, key) is not None}
        if redacted:
            values = {key: redact(value) for key, value in values.items()}
        return values


def _check_key(key: str) -> None:
    if key not in KEYS:
        raise CliError(f"unknown setting {key!r}; known settings: {', '.join(KEYS)}")


def load_settings(path: Path | None = None) -> Settings:
    """Read the settings file; an absent file means no settings.

    Raises:
        CliError: The file is not valid YAML, not a mapping, or has unknown keys.
    """
    path = config_path() if path is None else path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Settings()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CliError(f"{path} is not valid YAML: {exc}") from exc
    if data is None:
        return Settings()
    if not isinstance(data, dict):
        raise CliError(f"{path} must hold a mapping of settings")
    values: dict[str, str] = {}
    for key, value in data.items():
        _check_key(str(key))
        if value is None:
            continue
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise CliError(f"{path}: setting {key!r} must be a string")
        values[str(key)] = str(value)
    return Settings(**values)


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write the settings file (creating its folder), readable by its owner only.

    Returns:
        The file written.
    """
    path = config_path() if path is None else path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(settings.as_dict(redacted=False), sort_keys=False)
        # URLs may carry passwords, so the file is created private.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}", exit_codes.USAGE_ERROR) from exc
    return path


def with_setting(settings: Settings, key: str, value: str) -> Settings:
    """``settings`` with ``key`` set to ``value``; setting one spelling clears the other.

    Raises:
        CliError: ``key`` is not a known setting.
    """
    _check_key(key)
    values: dict[str, str | None] = dict(settings.as_dict(redacted=False))
    values[key] = value
    for url_key, path_key in _PAIRS.items():
        if key == url_key:
            values.pop(path_key, None)
        elif key == path_key:
            values.pop(url_key, None)
    return Settings(**values)


def _pick(
    what: str,
    url: str | None,
    path: str | None,
    configured_url: str | None,
    configured_path: str | None,
    default: str,
) -> str:
    if url is not None and path is not None:
        raise CliError(f"pass either --{what} or --{what}-path, not both")
    candidates = (url, path, configured_url, configured_path)
    chosen = next((c for c in candidates if c is not None), default)
    remember_url(chosen)
    return chosen


def resolve_store(url: str | None, path: str | None, settings: Settings | None = None) -> str:
    """The queue store URL (or SQLite path) a command uses.

    Args:
        url: The ``--store`` flag.
        path: The ``--store-path`` flag.
        settings: The settings file's values; read from disk when ``None``.
    """
    settings = load_settings() if settings is None else settings
    return _pick("store", url, path, settings.store, settings.store_path, DEFAULT_QUEUE_STORE_PATH)


def resolve_retry_store(url: str | None, path: str | None, settings: Settings | None = None) -> str:
    """The attempt store URL (or SQLite path) ``process`` and ``exec`` use."""
    settings = load_settings() if settings is None else settings
    return _pick(
        "retry-store",
        url,
        path,
        settings.retry_store,
        settings.retry_store_path,
        DEFAULT_RETRY_STORE_PATH,
    )
