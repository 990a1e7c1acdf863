"""Connection-kill campaign: the server drops every connection many times a second while
producers and consumers work; nothing may be lost, double-acked or double-leased."""

from __future__ import annotations

import random
import subprocess
import tempfile
import time
from pathlib import Path

from localqueue.errors import StoreError
from localqueue.protocols import ConnectionKillable
from localqueue.registry import open_queue_store
from localqueue.testing.campaigns import _children
from localqueue.testing.campaigns._report import KILLS_LOG, CampaignReport, audit
from localqueue.testing.campaigns.crash import _purge, fresh_queue, store_label


def run_connection_kills(
    url: str,
    *,
    seconds: float = 8.0,
    producers: int = 2,
    consumers: int = 2,
    messages: int = 400,
    interval: tuple[float, float] = (0.01, 0.15),
    lease_timeout: float = 2.0,
    drain_timeout: float = 120.0,
    seed: int = 4321,
    setup: str | None = None,
) -> CampaignReport:
    """Kill every server connection of ``url`` every ``interval`` seconds, then audit.

    ``producers`` processes put ``messages`` messages each (singly and in
    batches of 20) and ``consumers`` processes lease and ack, all retrying a
    call that raised a ``StoreError`` after a short back-off, as a resilient
    client does. For ``seconds`` the parent has the server close every
    connection of the store's namespace (the ``ConnectionKillable`` hook) at
    random intervals; then the kills stop and the queue is drained. The logs
    are audited as in the crash campaign (``kills`` counts kill rounds,
    ``extra["connections-closed"]`` the connections the server closed). An ack
    that returned False while a kill round ran may have deleted the message
    before its reply was lost (a store retrying it then finds nothing to
    delete, as documented), so it counts in ``extra["ack-unconfirmed"]``; any
    other ack that returned False for a message nobody acked is a loss.
    Children that exit with an error count in ``errors``. Stores without the
    hook (embedded engines) are skipped.
    """
    _children.run_setup(setup)
    report = CampaignReport("connection-kills", store_label(url))
    store = open_queue_store(url)
    if not isinstance(store, ConnectionKillable):
        store.close()
        report.skipped = "the store has no server connections to kill"
        return report
    started = time.monotonic()
    queue = fresh_queue("kills")
    rng = random.Random(seed)
    closed = 0
    with tempfile.TemporaryDirectory(prefix="lq-kills-") as folder:
        logs = Path(folder)
        children: list[subprocess.Popen[bytes]] = []
        try:
            for n in range(producers):
                produce = (url, queue, logs, f"p{n}", messages, 20 if n % 2 else 1)
                children.append(_children.spawn("produce", *produce, setup=setup, tolerant=True))
            for n in range(consumers):
                consume = (url, queue, logs, f"c{n}", lease_timeout)
                children.append(_children.spawn("consume", *consume, setup=setup, tolerant=True))
            end = time.monotonic() + seconds
            with (logs / KILLS_LOG).open("a", buffering=1) as kills:
                while time.monotonic() < end:
                    time.sleep(rng.uniform(*interval))
                    before = time.time()
                    try:
                        closed += store.kill_connections()
                        report.kills += 1
                    except StoreError as exc:
                        report.problems.append(f"kill hook failed: {exc}")
                    kills.write(f"{before:.6f} {time.time():.6f}\n")
            for p in children[:producers]:
                try:
                    code = p.wait(drain_timeout)
                except subprocess.TimeoutExpired:
                    code = None
                if code != 0:
                    report.errors += 1
                    report.problems.append(f"a producer exited with {code}")
            deadline = time.monotonic() + drain_timeout
            while _total(url, queue) and time.monotonic() < deadline:
                time.sleep(0.2)
            report.left_in_store = _total(url, queue)
        finally:
            (logs / "stop").touch()
            _stop(children, producers, report)
            store.close()
            _purge(url, queue)
        audit(report, logs)
    report.extra["connections-closed"] = closed
    report.seconds = time.monotonic() - started
    return report


def _stop(children: list[subprocess.Popen[bytes]], producers: int, report: CampaignReport) -> None:
    """Wait for every child (killing those that hang); count consumers that failed."""
    for n, p in enumerate(children):
        try:
            code = p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            code = p.wait()
        if n >= producers and code != 0:
            report.errors += 1
            report.problems.append(f"a consumer exited with {code}")


def _total(url: str, queue: str) -> int:
    store = open_queue_store(url)
    try:
        return store.stats(queue).total
    finally:
        store.close()
