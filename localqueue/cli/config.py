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
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from localqueue.cli import exit_codes
from localqueue.cli.errors import CliError, exit_code_for, remember_url
from localqueue.errors import LocalQueueError
from localqueue.protocols import AttemptStore, QueueStore
from localqueue.queue import DEFAULT_QUEUE_STORE_PATH
from localqueue.registry import PathBackend, get_backend
from localqueue.retry import DEFAULT_RETRY_STORE_PATH
from localqueue.urls import StoreURL, redact

__all__ = [
    "DEFAULT_RETRY_STORE_PATH",
    "KEYS",
    "Settings",
    "StoreChoice",
    "check_setting",
    "choose_retry_store",
    "choose_store",
    "config_path",
    "load_settings",
    "resolve_retry_store",
    "resolve_store",
    "save_settings",
    "sqlite_url",
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
    source: Path | None = field(default=None, compare=False)
    """The file these values were read from, if any."""

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
        return Settings(source=path)
    if not isinstance(data, dict):
        raise CliError(f"{path} must hold a mapping of settings")
    values: dict[str, str] = {}
    for key, value in data.items():
        try:
            _check_key(str(key))
        except CliError as exc:
            raise CliError(f"{path}: {exc}") from None
        if value is None:
            continue
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise CliError(f"{path}: setting {key!r} must be a string")
        values[str(key)] = str(value)
    return Settings(**values, source=path)


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


def check_setting(key: str, value: str) -> None:
    """Refuse a value the commands could not open, without creating or touching any store.

    The value goes through the same parsing as a command's (URL, scheme, the
    backend's own checks and options); a file-backed store is tried at a
    throw-away path, and a server is not contacted.

    Raises:
        CliError: ``key`` is unknown, or the value is not a usable store.
    """
    _check_key(key)
    try:
        url = sqlite_url(value) if key.endswith("_path") else value
        parsed = StoreURL.parse(url)
        backend = get_backend(parsed.scheme)
        if isinstance(backend, PathBackend):
            _probe(backend, parsed, attempts=key.startswith("retry"))
    except (CliError, LocalQueueError) as exc:
        raise CliError(f"invalid {key} {redact(value)!r}: {exc}", exit_code_for(exc)) from None


def _probe(backend: PathBackend, url: StoreURL, *, attempts: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="localqueue-check-") as scratch:
        if url.path:
            url = replace(url, path=os.path.join(scratch, "probe"))
        store: QueueStore | AttemptStore = (
            backend.open_attempt_store(url) if attempts else backend.open_queue_store(url)
        )
        store.close()


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
    return Settings(**values, source=settings.source)


@dataclass(frozen=True)
class StoreChoice:
    """The store a command uses and where that choice came from."""

    url: str
    """A store URL (a ``--store-path`` / ``store_path`` is turned into a ``sqlite://`` one)."""
    origin: str
    """``--store``, ``--store-path``, the settings file's key and path, or ``the default``."""

    @property
    def from_settings(self) -> bool:
        """Whether the URL was read from the settings file."""
        return self.origin.startswith("setting ")


def sqlite_url(path: str) -> str:
    """The ``sqlite://`` URL of a file path, so a path is never read as a URL."""
    if not path:
        raise CliError("a SQLite store path must not be empty")
    return StoreURL(scheme="sqlite", path=path).to_string()


def _pick(
    what: str,
    key: str,
    url: str | None,
    path: str | None,
    settings: Settings,
    default: str,
) -> StoreChoice:
    if url is not None and path is not None:
        raise CliError(f"pass either --{what} or --{what}-path, not both")
    where = settings.source or config_path()
    configured_url: str | None = getattr(settings, key)
    configured_path: str | None = getattr(settings, f"{key}_path")
    if url is not None:
        choice = StoreChoice(url, f"--{what}")
    elif path is not None:
        choice = StoreChoice(sqlite_url(path), f"--{what}-path")
    elif configured_url is not None:
        choice = StoreChoice(configured_url, f"setting {key!r} in {where}")
    elif configured_path is not None:
        origin = f"setting {key + '_path'!r} in {where}"
        try:
            choice = StoreChoice(sqlite_url(configured_path), origin)
        except CliError as exc:
            raise CliError(f"{origin}: {exc}") from None
    else:
        choice = StoreChoice(default, "the default")
    remember_url(choice.url)
    return choice


def choose_store(
    url: str | None, path: str | None, settings: Settings | None = None
) -> StoreChoice:
    """The queue store a command uses, with where it came from.

    Args:
        url: The ``--store`` flag.
        path: The ``--store-path`` flag.
        settings: The settings file's values; read from disk when ``None``.
    """
    settings = load_settings() if settings is None else settings
    return _pick("store", "store", url, path, settings, DEFAULT_QUEUE_STORE_PATH)


def choose_retry_store(
    url: str | None, path: str | None, settings: Settings | None = None
) -> StoreChoice:
    """The attempt store ``process`` and ``exec`` use, with where it came from."""
    settings = load_settings() if settings is None else settings
    return _pick("retry-store", "retry_store", url, path, settings, DEFAULT_RETRY_STORE_PATH)


def resolve_store(url: str | None, path: str | None, settings: Settings | None = None) -> str:
    """The queue store URL (or SQLite path) a command uses.

    Args:
        url: The ``--store`` flag.
        path: The ``--store-path`` flag.
        settings: The settings file's values; read from disk when ``None``.
    """
    return choose_store(url, path, settings).url


def resolve_retry_store(url: str | None, path: str | None, settings: Settings | None = None) -> str:
    """The attempt store URL (or SQLite path) ``process`` and ``exec`` use."""
    return choose_retry_store(url, path, settings).url
