"""Damage campaign: damaged files and records must be reported, and never hide or block
the messages that were not damaged."""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from localqueue.errors import StoreError
from localqueue.protocols import Damage, DamageInjectable, QueueStore, Repairable
from localqueue.registry import open_queue_store
from localqueue.testing._base import CODEC
from localqueue.testing.campaigns._report import CampaignReport
from localqueue.testing.campaigns.crash import fresh_queue
from localqueue.urls import StoreURL


def store_files(url: str) -> Path | None:
    """The file or directory a URL's store keeps its data in, or None for a server store.

    A URL names files when it has a path and no host (``sqlite:///q.db``,
    ``lmdb:////var/q``): that is how the damage campaign tells which stores
    it can damage file by file.
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
"""The kinds of file damage tried, each applied to every file of the store."""

RECORD_EVERY = 10
"""Record cases damage one message in this many."""

_FIGURES = ("cases", "typed-errors", "delivered", "dead-damaged", "dropped", "repaired")


@dataclass
class _Outcome:
    delivered: int = 0
    dead_damaged: int = 0
    error: StoreError | None = None


def run_damage(url: str, *, messages: int = 500) -> CampaignReport:
    """Damage stores of ``url``'s kind in every way this package knows, then drain them.

    *File cases* (stores whose URL names files): a store of the same scheme and
    options in a fresh temporary directory gets ``messages`` messages, is
    closed, has every one of its files damaged as :data:`DAMAGE` says, and is
    drained, repaired (where the store can) and drained again. The URL's own
    files are never touched.

    *Record cases* (stores implementing ``DamageInjectable``, servers
    included): a fresh queue (of a fresh copy, for file stores) gets ``messages`` messages, one
    in :data:`RECORD_EVERY` is damaged through the hook, and the queue is
    drained, then purged.

    Every error must be a :class:`~localqueue.errors.StoreError` (others count
    in ``errors``). ``blocked`` counts messages neither delivered nor dead-lettered
    as damaged in a case where the store never raised: silently stranded, which
    must not happen; in record cases also the undamaged messages not delivered.
    ``lost`` counts records damaged through the hook that were not kept as dead
    letters. ``extra`` holds the cases, typed errors, deliveries, damaged dead
    letters, records dropped (their data gone) and repairs made.
    """
    started = time.monotonic()
    parsed = StoreURL.parse(url)
    report = CampaignReport("damage", parsed.scheme)
    report.extra = dict.fromkeys(_FIGURES, 0)
    original = store_files(url)
    if original is None:
        _record_cases(report, url, messages)
    else:
        _file_cases(report, parsed, original, messages)
        with tempfile.TemporaryDirectory(prefix="lq-damage-") as folder:
            _record_cases(report, _copy_url(parsed, original, folder), messages)
    if not report.extra["cases"]:
        report.skipped = "the store has no files and cannot damage its own records"
        report.extra = {}
    report.seconds = time.monotonic() - started
    return report


def _copy_url(parsed: StoreURL, original: Path, folder: str) -> str:
    """A URL of the same scheme and options as ``parsed``, its files in ``folder``."""
    query = f"?{urlencode(dict(parsed.query))}" if parsed.query else ""
    return f"{parsed.scheme}:///{folder}/{original.name or 'store'}{query}"


def _file_cases(report: CampaignReport, parsed: StoreURL, original: Path, messages: int) -> None:
    for kind, damage in DAMAGE.items():
        with tempfile.TemporaryDirectory(prefix="lq-damage-") as folder:
            copy = _copy_url(parsed, original, folder)
            store = open_queue_store(copy)
            try:
                _fill(store, "q", messages)
            finally:
                store.close()
            report.messages += messages
            for path in sorted(Path(folder).rglob("*")):
                if path.is_file() and path.stat().st_size:
                    damage(path)
            report.extra["cases"] += 1
            try:
                outcome = _drain_and_count(copy, "q", messages, report, kind)
                if outcome.error is not None:
                    again = _repair_and_drain(copy, "q", messages, report, kind)
                    outcome = _Outcome(
                        outcome.delivered + again.delivered, again.dead_damaged, outcome.error
                    )
                _count(report, outcome)
                total = outcome.delivered + outcome.dead_damaged
                if outcome.error is None and total < messages:
                    # No error, yet messages neither delivered nor moved aside: hidden.
                    report.blocked += messages - total
                    report.problems.append(f"{kind}: {messages - total} messages stranded silently")
            except Exception as exc:
                report.errors += 1
                report.problems.append(f"{kind}: untyped {type(exc).__qualname__}: {exc}")


def _record_cases(report: CampaignReport, url: str, messages: int) -> None:
    probe = open_queue_store(url)
    try:
        if not isinstance(probe, DamageInjectable):
            return
        kinds: list[Damage] = sorted(probe.damages)
    finally:
        probe.close()
    for how in kinds:
        queue = fresh_queue(f"damage-{how}")
        store = open_queue_store(url)
        try:
            assert isinstance(store, DamageInjectable)
            ids = _fill(store, queue, messages)
            damaged = ids[::RECORD_EVERY]
            for message_id in damaged:
                store.damage_record(queue, message_id, how)
            report.messages += messages
            report.extra["cases"] += 1
            outcome = _drain_and_count(url, queue, messages, report, f"record-{how}")
            _count(report, outcome)
            intact = messages - len(damaged)
            if outcome.error is not None or outcome.delivered != intact:
                report.blocked += max(0, intact - outcome.delivered)
                report.problems.append(
                    f"record-{how}: {outcome.delivered} of {intact} intact messages delivered"
                )
            if how == "record":
                report.lost += len(damaged) - outcome.dead_damaged
            else:
                report.extra["dropped"] += len(damaged)
        except Exception as exc:
            report.errors += 1
            report.problems.append(f"record-{how}: untyped {type(exc).__qualname__}: {exc}")
        finally:
            try:
                store.purge(queue, "all")
            finally:
                store.close()


def _fill(store: QueueStore, queue: str, messages: int) -> list[str]:
    ids: list[str] = []
    codec = CODEC
    for start in range(0, messages, 50):
        batch = range(start, min(messages, start + 50))
        ids += [m.id for m in store.put_many(queue, [f"{i}".encode() for i in batch], codec=codec)]
    return ids


@contextlib.contextmanager
def _warnings_silenced() -> Iterator[None]:
    """The stores log each record they move aside; the campaign counts them itself."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def _drain_and_count(
    url: str, queue: str, limit: int, report: CampaignReport, case: str
) -> _Outcome:
    outcome = _Outcome()
    with _warnings_silenced():
        try:
            store = open_queue_store(url)
        except StoreError as exc:
            return _typed(outcome, exc, report, case)
        try:
            for _ in range(limit + 1):
                leased = store.lease(queue, lease_timeout=60, limit=10)
                if not leased:
                    break
                for m in leased:
                    outcome.delivered += store.ack(queue, m.id, lease_token=m.lease_token)
            outcome.dead_damaged = sum(
                1
                for m in store.dead_letters(queue)
                if m.last_error and "damaged" in m.last_error.lower()
            )
        except StoreError as exc:
            _typed(outcome, exc, report, case)
        finally:
            store.close()
    return outcome


def _count(report: CampaignReport, outcome: _Outcome) -> None:
    report.extra["delivered"] += outcome.delivered
    report.extra["dead-damaged"] += outcome.dead_damaged


def _repair_and_drain(
    url: str, queue: str, limit: int, report: CampaignReport, case: str
) -> _Outcome:
    try:
        store = open_queue_store(url)
    except StoreError:
        return _Outcome()  # the engine cannot open what is left: reported already
    try:
        if not isinstance(store, Repairable):
            return _Outcome()
        report.extra["repaired"] += len(store.repair())
    except StoreError:
        return _Outcome()
    finally:
        store.close()
    return _drain_and_count(url, queue, limit, report, f"{case} after repair")


def _typed(outcome: _Outcome, exc: StoreError, report: CampaignReport, case: str) -> _Outcome:
    outcome.error = exc
    report.extra["typed-errors"] += 1
    report.problems.append(f"{case}: {type(exc).__name__}")
    return outcome
