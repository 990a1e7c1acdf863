"""Damage campaign: a file-based store's files are damaged; errors must be typed."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from localqueue.errors import StoreError
from localqueue.registry import open_queue_store
from localqueue.testing.campaigns._report import CampaignReport
from localqueue.urls import StoreURL


def store_files(url: str) -> Path | None:
    """The file or directory a URL's store keeps its data in, or None for a server store.

    A URL names files when it has a path and no host (``sqlite:///q.db``,
    ``lmdb:////var/q``): that is how the damage campaign tells which stores
    it can damage.
    """
    parsed = StoreURL.parse(url)
    if parsed.host is not None or not parsed.path:
        return None
    return Path(parsed.path)


def _garble(path: Path) -> None:
    path.write_bytes(b"this is not a database at all" * max(1, path.stat().st_size // 29))


def _truncate(path: Path) -> None:
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 3)


def _scribble(path: Path) -> None:
    size = path.stat().st_size
    with path.open("r+b") as f:
        for offset in range(size // 4, size, max(1, size // 7)):
            f.seek(offset)
            f.write(b"\xa5" * 512)


DAMAGE: dict[str, Callable[[Path], None]] = {
    "garble": _garble,
    "truncate": _truncate,
    "scribble": _scribble,
}
"""The kinds of damage tried, each applied to every file of the store."""


def run_damage(url: str, *, messages: int = 500) -> CampaignReport:
    """Damage a copy of ``url``'s store in each way of :data:`DAMAGE`, then drain it.

    The user's files are never touched: each case opens a store of the same
    scheme and options in a fresh temporary directory, puts ``messages``
    messages, closes it, damages every file, then leases and acks until empty.
    Every error must be a :class:`~localqueue.errors.StoreError` (others count
    in ``errors``); ``extra`` counts the cases, those that ended in a typed
    error, messages still delivered, and ``unaccounted`` ones: neither delivered
    nor reported by an error in a case that raised none (a figure to watch,
    not yet a failure). Server stores (a URL with a host) are skipped.
    """
    started = time.monotonic()
    report = CampaignReport("damage", StoreURL.parse(url).scheme)
    original = store_files(url)
    if original is None:
        report.skipped = "the URL names a server, not files"
        return report
    parsed = StoreURL.parse(url)
    query = f"?{urlencode(dict(parsed.query))}" if parsed.query else ""
    report.extra = {"cases": 0, "typed-errors": 0, "delivered": 0, "unaccounted": 0}
    for kind, damage in DAMAGE.items():
        with tempfile.TemporaryDirectory(prefix="lq-damage-") as folder:
            copy = f"{parsed.scheme}:///{folder}/{original.name or 'store'}{query}"
            store = open_queue_store(copy)
            codec = store.serializer.name
            try:
                for start in range(0, messages, 50):
                    batch = range(start, min(messages, start + 50))
                    store.put_many("q", [f"{i}".encode() for i in batch], codec=codec)
            finally:
                store.close()
            report.messages += messages
            for path in sorted(Path(folder).rglob("*")):
                if path.is_file() and path.stat().st_size:
                    damage(path)
            report.extra["cases"] += 1
            try:
                delivered = _drain(copy, messages)
                report.extra["delivered"] += delivered
                # Neither delivered nor reported: silently stranded (issue 19 territory).
                report.extra["unaccounted"] += messages - delivered
            except StoreError as exc:
                report.extra["typed-errors"] += 1
                report.problems.append(f"{kind}: {type(exc).__name__}")
            except Exception as exc:
                report.errors += 1
                report.problems.append(f"{kind}: untyped {type(exc).__qualname__}: {exc}")
    report.seconds = time.monotonic() - started
    return report


def _drain(url: str, limit: int) -> int:
    store = open_queue_store(url)
    delivered = 0
    try:
        for _ in range(limit + 1):
            leased = store.lease("q", lease_timeout=60, limit=10)
            if not leased:
                break
            for m in leased:
                delivered += store.ack("q", m.id, lease_token=m.lease_token)
    finally:
        store.close()
    return delivered
