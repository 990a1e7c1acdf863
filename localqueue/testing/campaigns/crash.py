"""Crash campaign: producers and consumers SIGKILLed at random, then an audit."""

from __future__ import annotations

import random
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from localqueue.registry import open_queue_store
from localqueue.testing.campaigns import _children
from localqueue.testing.campaigns._report import CampaignReport, audit
from localqueue.urls import StoreURL


def store_label(url: str) -> str:
    """The URL's scheme, for report lines (never the URL: it may hold a password)."""
    return StoreURL.parse(url).scheme


def fresh_queue(prefix: str) -> str:
    """A queue name no earlier run used, so a campaign never touches a user's messages."""
    return f"lq-{prefix}-{uuid.uuid4().hex[:12]}"


def run_crash(  # noqa: PLR0915 -- the chaos loop reads best in one piece
    url: str,
    *,
    seconds: float = 8.0,
    producers: int = 2,
    consumers: int = 3,
    lease_timeout: float = 1.0,
    drain_timeout: float = 120.0,
    seed: int = 1234,
    logs: Path | None = None,
    setup: str | None = None,
) -> CampaignReport:
    """SIGKILL producers and consumers on ``url`` at random for ``seconds``, then audit.

    Producers put 100-300 messages each, singly or in batches of 20, and are
    replaced when killed or done; consumers lease up to 3 with ``lease_timeout``
    and ack. After the chaos, fresh consumers drain the queue (at most
    ``drain_timeout`` seconds). Every message whose ``put`` returned must be
    acked once, no id may be leased twice at once, no batch half stored, and
    nothing left. Runs on a fresh queue, purged at the end; logs go to ``logs``
    (a temporary directory when None). ``setup`` (``module:function``) is
    called here and in every child first: register a backend there when it
    has no entry point.
    """
    if logs is None:
        with tempfile.TemporaryDirectory(prefix="lq-crash-") as folder:
            return run_crash(
                url,
                seconds=seconds,
                producers=producers,
                consumers=consumers,
                lease_timeout=lease_timeout,
                drain_timeout=drain_timeout,
                seed=seed,
                logs=Path(folder),
                setup=setup,
            )
    _children.run_setup(setup)
    started = time.monotonic()
    queue = fresh_queue("crash")
    rng = random.Random(seed)
    serial = 0
    report = CampaignReport("crash", store_label(url))
    open_queue_store(url).close()  # create the schema once, before the stampede

    def producer() -> subprocess.Popen[bytes]:
        nonlocal serial
        serial += 1
        count, batch = rng.randint(100, 300), rng.choice([1, 1, 20])
        return _children.spawn("produce", url, queue, logs, f"p{serial}", count, batch, setup=setup)

    def consumer() -> subprocess.Popen[bytes]:
        nonlocal serial
        serial += 1
        return _children.spawn(
            "consume", url, queue, logs, f"c{serial}", lease_timeout, setup=setup
        )

    prods = [producer() for _ in range(producers)]
    cons = [consumer() for _ in range(consumers)]
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(rng.uniform(0.1, 0.4))
            pool = prods if rng.random() < 0.4 else cons
            victim = rng.randrange(len(pool))
            if pool[victim].poll() is None:
                pool[victim].kill()  # SIGKILL: no cleanup, no flush, like a power cut
                pool[victim].wait()
                report.kills += 1
            pool[victim] = producer() if pool is prods else consumer()
            # Replace producers that finished on their own, to keep load up.
            prods = [p if p.poll() is None else producer() for p in prods]
        for p in prods:
            try:
                code = p.wait(drain_timeout)
            except subprocess.TimeoutExpired:
                code = None
            if code != 0:
                report.problems.append(f"a producer exited with {code}")
                report.errors += 1
        store = open_queue_store(url)
        try:
            deadline = time.monotonic() + drain_timeout
            while store.stats(queue).total and time.monotonic() < deadline:
                time.sleep(0.2)
            report.left_in_store = store.stats(queue).total
        finally:
            store.close()
    finally:
        (logs / "stop").touch()
        for p in cons + prods:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        _purge(url, queue)
    audit(report, logs)
    report.seconds = time.monotonic() - started
    return report


def _purge(url: str, queue: str) -> None:
    store = open_queue_store(url)
    try:
        store.purge(queue, "all")
    finally:
        store.close()
