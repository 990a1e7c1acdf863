"""Backends by URL scheme.

Look-up order for a scheme: a runtime :func:`register` call, then the
built-in table below (imported lazily, so ``import localqueue`` needs no
optional extra), then the ``localqueue.backends`` entry-point group, which is
only read when a scheme is missing. A plugin module is imported only when its
scheme is used.

A third-party package registers a scheme in its ``pyproject.toml``::

    [project.entry-points."localqueue.backends"]
    mydb = "localqueue_mydb:backend"

where ``backend`` is any object with ``open_queue_store`` and
``open_attempt_store`` (see :class:`~localqueue.protocols.Backend`);
:class:`ClassBackend` builds one from two classes with ``from_url``.
"""

from __future__ import annotations

import difflib
import importlib
import os
import shutil
import threading
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

from localqueue._install import backend_hint, extra_hint
from localqueue._models import Capability
from localqueue.errors import (
    BackendNotInstalledError,
    ConfigurationError,
    InvalidOptionError,
    StoreNotFoundError,
    UnknownBackendError,
    UnknownSerializerError,
)
from localqueue.protocols import AttemptStore, Backend, Clock, QueueStore
from localqueue.serializers import Serializer, get_serializer
from localqueue.urls import QUEUE_OPTIONS, StoreURL

__all__ = [
    "ENTRY_POINT_GROUP",
    "ClassBackend",
    "PathBackend",
    "available_schemes",
    "get_backend",
    "open_attempt_store",
    "open_queue_store",
    "register",
    "url_max_deliveries",
    "url_serializer",
]

ENTRY_POINT_GROUP = "localqueue.backends"

# scheme -> ("module:attribute", install hint when its import fails)
_BUILTIN: dict[str, tuple[str, str | None]] = {
    "memory": ("localqueue.stores.memory:backend", None),
    "sqlite": ("localqueue.stores.sqlite:backend", None),
    "lmdb": ("localqueue.stores.lmdb:backend", extra_hint("lmdb")),
}

# Well-known plugin schemes, so a missing plugin gets an install hint, not a shrug.
_PLUGIN_HINTS: dict[str, str] = {
    "postgresql": backend_hint("postgres"),
    "postgres": backend_hint("postgres"),
    "redis": backend_hint("redis"),
    "rediss": backend_hint("redis"),
}

_registered: dict[str, Backend | str] = {}
_loaded: dict[str, Backend] = {}
_lock = threading.Lock()


class _FromUrl(Protocol):
    @classmethod
    def from_url(cls, url: StoreURL, *, clock: Clock | None = None) -> Any: ...


@dataclass(frozen=True)
class ClassBackend:
    """A backend made of a queue-store class and an attempt-store class.

    Both classes provide ``from_url(url: StoreURL, *, clock=None)``.
    """

    queue_store: type[_FromUrl]
    attempt_store: type[_FromUrl]

    @property
    def capabilities(self) -> frozenset[Capability]:
        """The queue store class's capabilities."""
        caps: frozenset[Capability] = getattr(self.queue_store, "capabilities", frozenset())
        return caps

    def open_queue_store(self, url: StoreURL, *, clock: Clock | None = None) -> QueueStore:
        """Open the queue store ``url`` names."""
        store: QueueStore = self.queue_store.from_url(url, clock=clock)
        return store

    def open_attempt_store(self, url: StoreURL, *, clock: Clock | None = None) -> AttemptStore:
        """Open the attempt store ``url`` names."""
        store: AttemptStore = self.attempt_store.from_url(url, clock=clock)
        return store


_NAMESPACE_SUFFIX = ".lqns"


@dataclass(frozen=True)
class PathBackend(ClassBackend):
    """A :class:`ClassBackend` for stores living at ``url.path`` (a file or a directory).

    It implements :class:`~localqueue.protocols.NamespacedBackend`: a namespace
    of ``.../jobs.db`` is ``.../jobs.db-<name>.lqns/jobs.db``, a new directory
    beside the given path holding the store and anything it writes next to it
    (journals, lock files), so dropping it removes every file.
    """

    def namespace(self, url: StoreURL, name: str) -> StoreURL:
        """A fresh store path in a new directory beside ``url.path``."""
        if not url.path or not name.isalnum():
            raise ConfigurationError(f"cannot namespace {url.redacted()!r} as {name!r}")
        base = Path(url.path)
        root = base.with_name(f"{base.name}-{name}{_NAMESPACE_SUFFIX}")
        root.mkdir(parents=True, exist_ok=True)
        return replace(url, path=str(root / base.name))

    def drop_namespace(self, url: StoreURL) -> None:
        """Remove the namespace's directory and everything in it."""
        root = Path(url.path).parent
        if not root.name.endswith(_NAMESPACE_SUFFIX):
            raise ConfigurationError(f"{url.redacted()!r} is not a namespace URL")
        shutil.rmtree(root, ignore_errors=True)


def register(scheme: str, backend: Backend | str, *, replace: bool = False) -> None:
    """Make ``scheme`` resolve to ``backend`` in this process.

    Args:
        scheme: The URL scheme, e.g. ``"mydb"``.
        backend: A backend object, or a lazy ``"module:attribute"`` reference to one.
        replace: Allow replacing a different backend already registered for ``scheme``.

    Raises:
        ConfigurationError: ``scheme`` is registered to something else and ``replace``
            is false, or the scheme is not a valid URL scheme.
    """
    key = scheme.lower()
    if not key.isascii() or not key.replace("+", "").replace("-", "").replace(".", "").isalnum():
        raise ConfigurationError(f"invalid URL scheme {scheme!r}")
    with _lock:
        current = _registered.get(key)
        if current is not None and current != backend and not replace:
            raise ConfigurationError(
                f"scheme {key!r} is already registered to {current!r}; pass replace=True"
            )
        _registered[key] = backend
        _loaded.pop(key, None)


def _entry_point_targets() -> dict[str, str]:
    return {ep.name.lower(): ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_schemes() -> list[str]:
    """Every scheme that resolves here: registered, built in, or from entry points."""
    return sorted(set(_registered) | set(_BUILTIN) | set(_entry_point_targets()))


def _import_target(scheme: str, target: str, hint: str | None) -> Backend:
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if hint is not None:
            raise BackendNotInstalledError(scheme, hint) from exc
        raise
    backend: Backend = getattr(module, attribute) if attribute else module
    return backend


def get_backend(scheme: str) -> Backend:
    """Resolve a scheme to its backend.

    Raises:
        BackendNotInstalledError: The scheme is known but its package or extra is missing.
        UnknownBackendError: Nothing provides the scheme.
    """
    key = scheme.lower()
    with _lock:
        cached = _loaded.get(key)
        registered = _registered.get(key)
    if cached is not None:
        return cached
    if registered is not None:
        if isinstance(registered, str):
            backend = _import_target(key, registered, None)
        else:
            backend = registered
    elif key in _BUILTIN:
        target, hint = _BUILTIN[key]
        backend = _import_target(key, target, hint)
    else:
        target_from_ep = _entry_point_targets().get(key)
        if target_from_ep is not None:
            backend = _import_target(key, target_from_ep, _PLUGIN_HINTS.get(key))
        elif key in _PLUGIN_HINTS:
            raise BackendNotInstalledError(key, _PLUGIN_HINTS[key])
        else:
            known = available_schemes()
            close = difflib.get_close_matches(key, [*known, *_PLUGIN_HINTS], n=1)
            raise UnknownBackendError(key, known, close[0] if close else None)
    with _lock:
        _loaded[key] = backend
    return backend


def _require_existing(backend: Backend, url: StoreURL) -> None:
    """Refuse a path-backed store whose file or directory is not there."""
    if isinstance(backend, PathBackend) and url.path and not os.path.exists(url.path):
        raise StoreNotFoundError(url.path)


def url_serializer(url: str | os.PathLike[str] | StoreURL) -> Serializer | None:
    """The codec a store URL's ``?serializer=`` names, or ``None`` if it names none.

    The option belongs to the queue, not the store: :class:`~localqueue.queue.PersistentQueue`
    encodes with it, and :func:`open_queue_store` takes it off before the backend
    sees the URL.

    Raises:
        InvalidOptionError: The name is not a registered serializer.
    """
    parsed = url if isinstance(url, StoreURL) else StoreURL.parse(url)
    name = parsed.query.get("serializer")
    if name is None:
        return None
    try:
        return get_serializer(name)
    except UnknownSerializerError as exc:
        raise InvalidOptionError(parsed.scheme, "serializer", f"{name!r}: {exc}") from None


def url_max_deliveries(url: str | os.PathLike[str] | StoreURL) -> int | None:
    """The delivery cap a store URL's ``?max_deliveries=`` sets, or ``None``.

    Like ``?serializer=``, the option belongs to the queue
    (:class:`~localqueue.queue.PersistentQueue`), not the store.

    Raises:
        InvalidOptionError: The value is not an int of at least 1.
    """
    parsed = url if isinstance(url, StoreURL) else StoreURL.parse(url)
    text = parsed.query.get("max_deliveries")
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise InvalidOptionError(
            parsed.scheme, "max_deliveries", f"{text!r}: must be an int of at least 1"
        )
    return value


def _store_url(url: str | os.PathLike[str] | StoreURL) -> StoreURL:
    """``url`` parsed, its queue options checked and taken off: what a backend receives."""
    parsed = url if isinstance(url, StoreURL) else StoreURL.parse(url)
    url_serializer(parsed)
    url_max_deliveries(parsed)
    return parsed.without(*QUEUE_OPTIONS)


def open_queue_store(
    url: str | os.PathLike[str] | StoreURL, *, clock: Clock | None = None, create: bool = True
) -> QueueStore:
    """Open the queue store a URL (or a plain SQLite path) names.

    Args:
        url: The store URL (text or a parsed ``StoreURL``), or a SQLite file path.
        clock: A time source for stores that take one.
        create: With ``False``, a file-backed store (SQLite, LMDB) whose path does
            not exist is refused instead of being created empty: what read-only
            callers want, so a mistyped path is not read as an empty queue.
            Server stores (and ``memory://``) are opened as usual.

    A ``?serializer=`` option is checked and not passed on (it configures the
    queue: see :func:`url_serializer`).

    Raises:
        ConfigurationError: The URL, its scheme or an option is invalid.
        StoreNotFoundError: ``create`` is false and nothing exists at the store's path.
    """
    parsed = _store_url(url)
    backend = get_backend(parsed.scheme)
    if not create:
        _require_existing(backend, parsed)
    return backend.open_queue_store(parsed, clock=clock)


def open_attempt_store(
    url: str | os.PathLike[str], *, clock: Clock | None = None, create: bool = True
) -> AttemptStore:
    """Open the attempt store a URL (or a plain SQLite path) names.

    Args:
        url: The store URL, or a SQLite file path.
        clock: A time source for stores that take one.
        create: As for :func:`open_queue_store`.

    Raises:
        ConfigurationError: The URL, its scheme or an option is invalid.
        StoreNotFoundError: ``create`` is false and nothing exists at the store's path.
    """
    parsed = _store_url(url)
    backend = get_backend(parsed.scheme)
    if not create:
        _require_existing(backend, parsed)
    return backend.open_attempt_store(parsed, clock=clock)
