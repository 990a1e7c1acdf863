"""Disk-full campaign: a store whose disk is full to the last byte can still be drained."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from localqueue.errors import StoreError
from localqueue.registry import open_queue_store
from localqueue.testing._base import CODEC
from localqueue.testing.campaigns._report import CampaignReport
from localqueue.testing.campaigns.damage import _copy_url, store_files
from localqueue.urls import StoreURL

PAYLOAD = b"x" * 1024
BATCH = 50


class _CannotMount(OSError):
    pass


@contextlib.contextmanager
def small_filesystem(size: str) -> Iterator[Path]:
    """A real tmpfs of ``size`` (``"4m"``) mounted on a fresh directory, unmounted after.

    Raises:
        OSError: The filesystem cannot be mounted (mounting needs root).
    """
    with tempfile.TemporaryDirectory(prefix="lq-disk-full-") as folder:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", folder],
            capture_output=True,
            check=False,
        )
        if mounted.returncode != 0:
            raise _CannotMount(mounted.stderr.decode(errors="replace").strip() or "mount failed")
        try:
            yield Path(folder)
        finally:
            subprocess.run(["umount", "-l", folder], check=False)


def fill_to_the_last_byte(folder: Path) -> int:
    """Write filler files into ``folder`` until the filesystem refuses a single byte.

    Returns the bytes written. Each file is synced, so the space is really taken.
    """
    written = 0
    chunk = 1 << 16
    for n in range(1_000_000):
        try:
            with (folder / f"filler-{n}").open("wb") as f:
                while True:
                    f.write(b"\0" * chunk)
                    f.flush()
                    os.fsync(f.fileno())
                    written += chunk
        except OSError:
            if chunk == 1:
                break
            chunk //= 2
    return written


def run_disk_full(url: str, *, size: str = "2m") -> CampaignReport:
    """Fill a small real filesystem with a store of ``url``'s kind, then drain it.

    A store of the same scheme and options is created on a fresh ``size`` tmpfs;
    messages are put in batches until the store refuses one, then single
    messages until it refuses again, then filler files take every byte left.
    Consumers then lease and ack until the queue is empty. ``lost`` counts
    messages that were stored and could not be acked; ``blocked`` those the
    consumers could not even lease. Every error while filling must be a typed
    :class:`~localqueue.errors.StoreError`. ``extra`` holds the messages
    stored, delivered, the filler bytes and the drain errors met. Stores whose
    URL names no files, and machines where a filesystem cannot be mounted
    (not root), are skipped.
    """
    started = time.monotonic()
    parsed = StoreURL.parse(url)
    report = CampaignReport("disk-full", parsed.scheme)
    original = store_files(url)
    if original is None:
        report.skipped = "the URL names no files"
        return report
    try:
        with small_filesystem(size) as disk:
            _fill_and_drain(report, _copy_url(parsed, original, str(disk)), disk)
    except _CannotMount as exc:
        report.skipped = f"cannot mount a small filesystem here: {exc}"
    report.seconds = time.monotonic() - started
    return report


def _fill_and_drain(report: CampaignReport, url: str, disk: Path) -> None:
    report.extra = {"stored": 0, "delivered": 0, "filler-bytes": 0, "drain-errors": 0}
    store = open_queue_store(url)
    codec = CODEC
    try:
        for batch in (BATCH, 1):
            while True:
                try:
                    store.put_many("q", [PAYLOAD] * batch, codec=codec)
                except StoreError:
                    break
                except Exception as exc:
                    report.errors += 1
                    report.problems.append(f"filling: untyped {type(exc).__qualname__}: {exc}")
                    break
                report.extra["stored"] += batch
        report.extra["filler-bytes"] = fill_to_the_last_byte(disk)
        stored = report.extra["stored"]
        report.messages = stored
        delivered = acked = 0
        for _ in range(stored + 10):
            try:
                leased = store.lease("q", lease_timeout=60, limit=10)
                if not leased:
                    break
                delivered += len(leased)
                for m in leased:
                    acked += store.ack("q", m.id, lease_token=m.lease_token)
            except StoreError as exc:
                report.extra["drain-errors"] += 1
                report.problems.append(f"draining: {type(exc).__name__}: {exc}")
                if report.extra["drain-errors"] >= 3:
                    break
        report.extra["delivered"] = delivered
        report.blocked = stored - delivered
        report.lost = stored - acked
    finally:
        store.close()
