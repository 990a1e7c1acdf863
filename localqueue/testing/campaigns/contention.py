"""Contention campaign: many processes hammer one store; no lock error may reach a caller."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from localqueue.registry import open_queue_store
from localqueue.testing.campaigns import _children
from localqueue.testing.campaigns._report import CampaignReport
from localqueue.testing.campaigns.crash import _purge, fresh_queue, store_label


def run_contention(
    url: str,
    *,
    processes: int = 8,
    rounds: int = 150,
    timeout: float = 600.0,
    setup: str | None = None,
) -> CampaignReport:
    """Run ``processes`` processes of ``rounds`` put/put_many/lease+ack/stats rounds each.

    Every call must succeed (a lock timeout reaching a caller counts in
    ``errors``); afterwards nothing may stay leased (``left_in_store`` counts
    messages not ready). ``worst_wait`` is the slowest single call. Runs on a
    fresh queue, purged at the end; ``setup`` as for :func:`run_crash`.
    """
    _children.run_setup(setup)
    started = time.monotonic()
    queue = fresh_queue("contention")
    report = CampaignReport("contention", store_label(url))
    report.extra["processes"] = processes
    open_queue_store(url).close()  # create the schema once, before the stampede
    with tempfile.TemporaryDirectory(prefix="lq-contention-") as folder:
        outs = [Path(folder) / f"out-{i}" for i in range(processes)]
        children: list[subprocess.Popen[bytes]] = []
        try:
            children += [
                _children.spawn("hammer", url, queue, rounds, out, setup=setup) for out in outs
            ]
            for child in children:
                child.wait(timeout)
        finally:
            for child in children:
                if child.poll() is None:
                    child.kill()
                    child.wait()
            try:
                store = open_queue_store(url)
                try:
                    stats = store.stats(queue)
                finally:
                    store.close()
            finally:
                _purge(url, queue)
        for child, out in zip(children, outs, strict=True):
            text = out.read_text() if out.exists() else f"no result (exit code {child.returncode})"
            if child.returncode == 0 and text.startswith("ok "):
                report.worst_wait = max(report.worst_wait, float(text[3:]))
            else:
                report.errors += 1
                report.problems.append(text)
    # Each round puts 3 and acks at most 3; whatever remains must be ready, not leased.
    report.messages = processes * rounds * 3
    report.left_in_store = stats.total - stats.ready
    report.seconds = time.monotonic() - started
    return report
