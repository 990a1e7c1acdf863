"""The LMDB engine under the LMDB stores: environments shared per directory and process.

Nothing here knows about queues. It opens an environment directory with the
named databases the stores use and checks its schema version; shares one
open environment between every handle on a directory in a process (LMDB
allows one per process); makes ``fork()`` safe; grows the memory map when it
fills or another process grew it; keeps a disk reserve allocated past the data
so a full disk can still be drained; and wraps write transactions to inject
engine faults for tests.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import lmdb

from localqueue.errors import (
    ConfigurationError,
    LegacyStoreError,
    SchemaVersionError,
    StoreCorruptedError,
    StoreError,
)
from localqueue.stores._legacy_0_2_0 import LMDB_HINT, lmdb_legacy_layout

__all__ = [
    "SCHEMA_VERSION",
    "Environment",
    "FaultyTxn",
    "Txn",
    "acquire",
    "release",
]

SCHEMA_VERSION = 1
"""The layout version this release writes; a newer one is refused."""

_SCHEMA_KEY = b"schema_version"
_MAX_GROWTH_TRIES = 1

T = TypeVar("T")
if TYPE_CHECKING:
    Txn: TypeAlias = lmdb.Transaction[bytes]
else:  # the runtime class is not generic; only the stubs are
    Txn = lmdb.Transaction


# -- one environment -------------------------------------------------------------------


class Environment:
    """One open LMDB environment, shared by every store handle on it in this process.

    LMDB forbids opening an environment twice in a process (its fcntl locks
    belong to the process), so handles are reference-counted here. The gate
    counts running transactions because the map may only be resized while
    none is running in this process.
    """

    def __init__(
        self, path: str, durability: str, map_size: int, max_readers: int, disk_reserve: int
    ) -> None:
        self.path = path
        self.durability = durability
        if disk_reserve:
            fs = os.statvfs(path)
            disk_reserve = min(disk_reserve, fs.f_blocks * fs.f_frsize // 8)
        self.disk_reserve = disk_reserve
        self._data_fd: int | None = None
        self._allocated = 0
        self.refs = 0
        self.forked = False
        self._active = 0
        self._resizing = False
        self._gate = threading.Condition()
        # Wakes wait() callers of this process; other processes are polled.
        self.changed = threading.Condition()
        self.waiters = 0
        sync = durability == "sync"
        self.env = lmdb.open(
            path,
            map_size=map_size,
            subdir=True,
            max_dbs=8,
            max_readers=max_readers,
            sync=sync,
            metasync=sync,
            lock=True,
            max_spare_txns=4,
        )
        try:
            self._check_file_size()
            if disk_reserve:
                # LMDB locks only lock.mdb, so a descriptor of our own on data.mdb is safe.
                self._data_fd = os.open(os.path.join(path, "data.mdb"), os.O_RDWR | os.O_CLOEXEC)
                self._allocated = os.fstat(self._data_fd).st_size
            self.env.reader_check()  # clear slots left by killed processes
            with self.env.begin(write=True) as txn:
                # 0.2.0 kept its keys in the main database: refuse rather than look empty.
                legacy = lmdb_legacy_layout(self.env, txn)
                if legacy is not None:
                    raise LegacyStoreError(path, legacy, SCHEMA_VERSION, hint=LMDB_HINT)
                self.meta = self.env.open_db(b"meta", txn=txn)
                self.messages = self.env.open_db(b"messages", txn=txn)
                self.ready = self.env.open_db(b"ready", txn=txn)
                self.dead = self.env.open_db(b"dead", txn=txn)
                self.dedup = self.env.open_db(b"dedup", txn=txn)
                self.retry = self.env.open_db(b"retry", txn=txn)
                self._check_schema(txn)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the environment and the descriptor the disk reserve is kept through."""
        self.env.close()
        fd, self._data_fd = self._data_fd, None
        if fd is not None:
            os.close(fd)

    def make_room(self, needed: int) -> None:
        """Before a write that adds messages: keep ``disk_reserve`` bytes for drains.

        LMDB takes new pages from its free list, then past the last page, and
        only the latter grows ``data.mdb``. Keeping ``disk_reserve`` bytes (plus
        ``needed`` for this write) allocated past the last page means that once
        the disk is full, the reserve is still there for leases and acks, which
        then recycle the pages acks free. Call inside the write transaction, so
        no other writer moves the last page meanwhile.

        Raises:
            StoreError: The disk has no room for this write and the reserve.
        """
        fd = self._data_fd
        if fd is None:
            return
        end = (self.env.info()["last_pgno"] + 1) * self.env.stat()["psize"]
        wanted = end + self.disk_reserve + needed
        if wanted <= self._allocated:
            return
        self._allocated = max(self._allocated, os.fstat(fd).st_size)  # others may have grown it
        if wanted <= self._allocated:
            return
        # Grow in steps, so that most writes skip the system call.
        step = min(max(self.disk_reserve, end // 8), 64 << 20)
        for target in (wanted + step, wanted):
            try:
                allocate(fd, self._allocated, target)
            except OSError as exc:
                if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or target == wanted:
                    raise StoreError(
                        f"LMDB store {self.path!r} is refusing new messages: the disk has no "
                        f"room for {needed} more bytes and the {self.disk_reserve}-byte reserve "
                        f"kept so consumers can drain it ({exc.strerror})"
                    ) from exc
            else:
                self._allocated = target
                return

    def _check_file_size(self) -> None:
        # LMDB maps the file; touching a page past a truncated end kills the
        # process with SIGBUS, so a short file is refused before any read.
        needed = (self.env.info()["last_pgno"] + 1) * self.env.stat()["psize"]
        actual = os.stat(os.path.join(self.path, "data.mdb")).st_size
        if actual < needed:
            raise StoreCorruptedError(
                f"LMDB store {self.path!r} is truncated: data.mdb has {actual} bytes, "
                f"its pages need {needed}"
            )

    def _check_schema(self, txn: Txn) -> None:
        stored = txn.get(_SCHEMA_KEY, db=self.meta)
        if stored is None:
            txn.put(_SCHEMA_KEY, str(SCHEMA_VERSION).encode(), db=self.meta)
            return
        try:
            found = int(stored)
        except ValueError:
            raise StoreCorruptedError(
                f"LMDB store {self.path!r} has a malformed schema version {stored!r}"
            ) from None
        if found > SCHEMA_VERSION:
            raise SchemaVersionError(found, SCHEMA_VERSION)
        if found < 1:
            raise StoreCorruptedError(f"LMDB store {self.path!r} has schema version {found}")

    @contextlib.contextmanager
    def transaction(self, write: bool) -> Iterator[Txn]:
        """One transaction, counted so a map resize can wait for it."""
        with self._gate:
            while self._resizing:
                self._gate.wait()
            self._active += 1
        try:
            with self.env.begin(write=write) as txn:
                yield txn
        finally:
            self._leave()

    def _leave(self) -> None:
        with self._gate:
            self._active -= 1
            if self._resizing and self._active == 0:
                self._gate.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold off every transaction of this process."""
        self.pause()
        try:
            yield
        finally:
            self.resume()

    def pause(self) -> None:
        """Wait for running transactions to end and hold off new ones until :meth:`resume`."""
        with self._gate:
            while self._resizing:
                self._gate.wait()
            self._resizing = True
            while self._active:
                self._gate.wait()

    def resume(self) -> None:
        """Let transactions start again."""
        with self._gate:
            self._resizing = False
            self._gate.notify_all()

    def grow(self, seen_size: int) -> None:
        """Double the map, unless another thread already grew it past ``seen_size``."""
        with self.exclusive():
            size = self.env.info()["map_size"]
            if size <= seen_size:
                self.env.set_mapsize(size * 2)

    def adopt_size(self) -> None:
        """Take over the larger map size another process has set."""
        with self.exclusive():
            self.env.set_mapsize(0)

    def run(self, write: bool, fn: Callable[[Txn], T]) -> T:
        """Run ``fn`` in one transaction, growing or adopting the map size once if needed."""
        for attempt in range(_MAX_GROWTH_TRIES + 1):
            size = self.env.info()["map_size"]
            try:
                with self.transaction(write) as txn:
                    return fn(txn)
            except lmdb.MapFullError:
                if attempt == _MAX_GROWTH_TRIES:
                    raise
                self.grow(size)
            except lmdb.MapResizedError:
                if attempt == _MAX_GROWTH_TRIES:
                    raise
                self.adopt_size()
        raise AssertionError("unreachable")  # pragma: no cover

    def notify(self) -> None:
        """Wake this process's waiters after a commit that made messages available."""
        if self.waiters:
            with self.changed:
                self.changed.notify_all()


def allocate(fd: int, size: int, target: int) -> None:
    """Make the bytes of ``fd`` up to ``target`` take disk blocks (its size is ``size``)."""
    if hasattr(os, "posix_fallocate"):
        os.posix_fallocate(fd, 0, target)
        return
    # No posix_fallocate (macOS): write zeros past the end, which LMDB never reads.
    chunk = b"\0" * (1 << 20)
    while size < target:
        size += os.pwrite(fd, chunk[: target - size], size)


# -- sharing per directory, and fork() -------------------------------------------------

_environments: dict[str, Environment] = {}
_environments_lock = threading.Lock()


def acquire(
    path: str, durability: str, map_size: int, max_readers: int, disk_reserve: int
) -> Environment:
    """This process's environment on ``path`` (created if missing), opened on first use.

    The other arguments apply only to the first opener; every call must be paired
    with a :func:`release`.

    Raises:
        ConfigurationError: The environment is open here with another durability.
    """
    os.makedirs(path, exist_ok=True)
    key = os.path.realpath(path)
    with _environments_lock:
        shared = _environments.get(key)
        if shared is None:
            shared = Environment(key, durability, map_size, max_readers, disk_reserve)
            _environments[key] = shared
        elif shared.durability != durability:
            raise ConfigurationError(
                f"LMDB store {key!r} is already open in this process with "
                f"durability={shared.durability}; one process uses one durability per store"
            )
        shared.refs += 1
        return shared


def release(shared: Environment) -> None:
    """Undo one :func:`acquire`; the last release closes the environment and wakes waiters."""
    with _environments_lock:
        shared.refs -= 1
        if shared.refs > 0 or shared.forked:
            return
        if _environments.get(shared.path) is shared:
            del _environments[shared.path]
    with shared.exclusive():
        shared.close()
    with shared.changed:
        shared.changed.notify_all()


# An LMDB environment must not be used across fork(). Forking waits for this
# process's running transactions to end, so the child inherits none; the child
# then closes the inherited environments (LMDB clears only the child's own
# reader slots, i.e. none) and can open the same directories afresh.


def _pause_before_fork() -> None:
    _environments_lock.acquire()
    for shared in _environments.values():
        shared.pause()


def _resume_in_parent() -> None:
    for shared in _environments.values():
        shared.resume()
    _environments_lock.release()


def _forget_in_child() -> None:
    global _environments_lock
    _environments_lock = threading.Lock()
    for shared in _environments.values():
        shared.forked = True
        with contextlib.suppress(Exception):
            shared.close()
    _environments.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_pause_before_fork,
        after_in_parent=_resume_in_parent,
        after_in_child=_forget_in_child,
    )


# -- fault injection -------------------------------------------------------------------


class FaultyCursor:
    """A cursor whose writes spend a :class:`FaultyTxn`'s budget."""

    def __init__(self, cursor: Any, txn: FaultyTxn) -> None:
        self._cursor = cursor
        self._txn = txn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __iter__(self) -> Any:
        return iter(self._cursor)

    def put(self, *args: Any, **kwargs: Any) -> Any:
        self._txn.spend(1)
        return self._cursor.put(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        self._txn.spend(1)
        return self._cursor.delete(*args, **kwargs)

    def putmulti(self, items: Any, *args: Any, **kwargs: Any) -> Any:
        items = list(items)
        allowed = self._txn.remaining
        if allowed < len(items):
            # Write the part the budget allows for real, so the abort has work to undo.
            self._cursor.putmulti(items[: max(allowed, 0)], *args, **kwargs)
        self._txn.spend(len(items))  # raises when over budget
        return self._cursor.putmulti(items, *args, **kwargs)


class FaultyTxn:
    """A write transaction that fails, with a native ``lmdb.Error``, past ``remaining`` writes.

    py-lmdb cannot make a write fail on demand, so the exception is raised
    here; the writes before it are real and the real transaction aborts them.
    """

    def __init__(self, txn: Txn, remaining: int) -> None:
        self._txn = txn
        self.remaining = remaining

    def spend(self, writes: int) -> None:
        self.remaining -= writes
        if self.remaining < 0:
            raise lmdb.TxnFullError("localqueue: injected engine fault")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._txn, name)

    def put(self, *args: Any, **kwargs: Any) -> Any:
        self.spend(1)
        return self._txn.put(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        self.spend(1)
        return self._txn.delete(*args, **kwargs)

    def replace(self, *args: Any, **kwargs: Any) -> Any:
        self.spend(1)
        return self._txn.replace(*args, **kwargs)

    def pop(self, *args: Any, **kwargs: Any) -> Any:
        self.spend(1)
        return self._txn.pop(*args, **kwargs)

    def cursor(self, *args: Any, **kwargs: Any) -> FaultyCursor:
        return FaultyCursor(self._txn.cursor(*args, **kwargs), self)
