"""localqueue side by side with the queues people pick instead, and with the raw engines.

One command, one process tree, one run::

    python benchmarks/compare.py                 # the full comparison, median of 3 runs
    python benchmarks/compare.py --quick         # tiny sizes: proves it works, measures nothing
    python benchmarks/compare.py --runs 5 --json results.json

Every row states its durability (SQLite ``synchronous`` NORMAL/FULL, LMDB
sync/nosync) and is compared with the raw sqlite3/lmdb loop doing the same
writes at the same setting. Then: 1 producer + 2 consumer processes per engine
counting lost and duplicated messages, blocking-get wake-up latency, and a
consumer's memory growth.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import multiprocessing
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import raw_loops
from bench_stores import DURABILITY_NOTES, TARGETS, StoreTarget, unavailable_reason
from peers import PEERS, EngineSpec, LocalQueueAdapter, open_engine, peer_location, peer_unavailable
from processes import (
    LOCALQUEUE_CONSUMER,
    body,
    consume_for_memory,
    consumer,
    producer,
    waiter,
    worker_consumer,
)

SQLITE_LEVELS = ("normal", "full")
LMDB_LEVELS = ("sync", "nosync")


@dataclass(frozen=True)
class Sizes:
    """How many messages each part of the comparison moves."""

    single: int
    """Per-call operations (put, get+ack) per engine."""
    batch: int
    """Messages moved by each batched operation."""
    multi_process: int
    """Messages in the producer/consumer run."""
    latency_samples: int
    memory_messages: int
    idle_seconds: float
    """How long the producer/consumer run waits without progress before giving up."""


FULL = Sizes(5_000, 50_000, 5_000, 200, 1_000_000, 10.0)
QUICK = Sizes(60, 600, 60, 5, 1_500, 3.0)


@dataclass
class Result:
    """One row of the output: an engine, an operation, a durability, one value per run."""

    section: str
    engine: str
    operation: str
    durability: str
    unit: str
    values: list[float] = field(default_factory=list)
    baseline: str | None = None
    """``key`` of the raw-loop row this one is divided by."""
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Identity of the row across runs."""
        return f"{self.engine}|{self.operation}|{self.durability}"

    @property
    def median(self) -> float | None:
        """Median over runs; ``None`` when every run failed."""
        return statistics.median(self.values) if self.values else None


@dataclass(frozen=True)
class Case:
    """A single-process measurement: ``run(workdir)`` returns the seconds for ``count`` messages."""

    engine: str
    operation: str
    durability: str
    count: int
    run: Callable[[Path], float]
    baseline: str | None = None
    note: str = ""

    @property
    def key(self) -> str:
        """Identity, shared with :class:`Result`."""
        return f"{self.engine}|{self.operation}|{self.durability}"


# -- single-process operations through an adapter ----------------------------------------------


def _bodies(count: int, size: int) -> list[str]:
    return [body(n, size) for n in range(count)]


def _fill(queue: Any, bodies: list[str]) -> None:
    if queue.batch_size:
        for first in range(0, len(bodies), queue.batch_size):
            queue.put_batch(bodies[first : first + queue.batch_size])
    else:
        for text in bodies:
            queue.put(text)


@contextlib.contextmanager
def _opened(spec: EngineSpec, target: StoreTarget | None) -> Iterator[Any]:
    queue = open_engine(spec)
    try:
        yield queue
    finally:
        queue.close()
        if target is not None:
            target.cleanup(spec.location)


def _op_put(
    spec: Callable[[Path], EngineSpec], target: StoreTarget | None, count: int, size: int
) -> Callable[[Path], float]:
    def run(workdir: Path) -> float:
        bodies = _bodies(count, size)
        with _opened(spec(workdir), target) as queue:
            start = time.perf_counter()
            for text in bodies:
                queue.put(text)
            return time.perf_counter() - start

    return run


def _op_put_batches(
    spec: Callable[[Path], EngineSpec],
    target: StoreTarget | None,
    count: int,
    size: int,
    batch: int,
) -> Callable[[Path], float]:
    def run(workdir: Path) -> float:
        bodies = _bodies(count, size)
        with _opened(spec(workdir), target) as queue:
            start = time.perf_counter()
            for first in range(0, count, batch):
                queue.put_batch(bodies[first : first + batch])
            return time.perf_counter() - start

    return run


def _op_get_ack(
    spec: Callable[[Path], EngineSpec], target: StoreTarget | None, count: int, size: int
) -> Callable[[Path], float]:
    def run(workdir: Path) -> float:
        with _opened(spec(workdir), target) as queue:
            _fill(queue, _bodies(count, size))
            start = time.perf_counter()
            for _ in range(count):
                got = queue.take(0)
                if got is None:
                    raise RuntimeError("the queue ran dry during get+ack")
                queue.ack(got[0])
            return time.perf_counter() - start

    return run


def _op_lease_ack_batch(
    spec: Callable[[Path], EngineSpec],
    target: StoreTarget | None,
    count: int,
    size: int,
    batch: int,
) -> Callable[[Path], float]:
    def run(workdir: Path) -> float:
        with _opened(spec(workdir), target) as adapter:
            assert isinstance(adapter, LocalQueueAdapter)
            _fill(adapter, _bodies(count, size))
            queue = adapter.queue
            start = time.perf_counter()
            done = 0
            while done < count:
                messages = queue.get_messages(batch)
                if not messages:
                    raise RuntimeError("the queue ran dry during batch lease")
                for message in messages:
                    _ = message.value
                queue.ack_many(messages)
                done += len(messages)
            return time.perf_counter() - start

    return run


# -- which cases run ------------------------------------------------------------------------------


def _localqueue_spec(target: StoreTarget) -> Callable[[Path], EngineSpec]:
    return lambda workdir: EngineSpec(
        "localqueue", target.durability, target.url(workdir, "msgpack")
    )


def _peer_spec(kind: str, durability: str) -> Callable[[Path], EngineSpec]:
    return lambda workdir: EngineSpec(kind, durability, peer_location(kind, workdir))


def _raw(family: str, operation: str, durability: str) -> str:
    return f"raw {family}|{operation}|{durability}"


def build_cases(
    sizes: Sizes, payload: bytes, only: set[str] | None
) -> tuple[list[Case], list[str]]:
    """Every single-process case, and a note for each engine left out."""
    n, nb, size = sizes.single, sizes.batch, len(payload)
    cases: list[Case] = []
    skipped: list[str] = []

    def wanted(engine: str) -> bool:
        return only is None or any(word in engine for word in only)

    for d in SQLITE_LEVELS:
        if wanted("raw sqlite3"):
            cases += [
                Case(
                    "raw sqlite3",
                    "put",
                    d,
                    n,
                    lambda w, d=d: raw_loops.sqlite_insert_commit(w, n, payload, d),
                    note="INSERT + COMMIT per row",
                ),
                Case(
                    "raw sqlite3",
                    "get+ack",
                    d,
                    n,
                    lambda w, d=d: raw_loops.sqlite_lease_delete(w, n, payload, d),
                    note="UPDATE ... RETURNING lease + DELETE, 2 commits",
                ),
                Case(
                    "raw sqlite3",
                    "put_many 50",
                    d,
                    nb,
                    lambda w, d=d: raw_loops.sqlite_executemany(w, nb, payload, d, 50),
                    note="executemany, 50 rows per transaction",
                ),
                Case(
                    "raw sqlite3",
                    "put_many 100",
                    d,
                    nb,
                    lambda w, d=d: raw_loops.sqlite_executemany(w, nb, payload, d, 100),
                    note="executemany, 100 rows per transaction",
                ),
                Case(
                    "raw sqlite3",
                    "lease+ack batch 100",
                    d,
                    nb,
                    lambda w, d=d: raw_loops.sqlite_lease_delete_batch(w, nb, payload, d, 100),
                    note="lease 100 rows, delete them, 2 commits",
                ),
            ]
    for d in LMDB_LEVELS:
        if wanted("raw lmdb"):
            cases += [
                Case(
                    "raw lmdb",
                    "put",
                    d,
                    n,
                    lambda w, d=d: raw_loops.lmdb_put_per_txn(w, n, payload, d),
                    note="one put per write transaction",
                ),
                Case(
                    "raw lmdb",
                    "get+ack",
                    d,
                    n,
                    lambda w, d=d: raw_loops.lmdb_claim_ack(w, n, payload, d),
                    note="claim + ack, 2 transactions",
                ),
                Case(
                    "raw lmdb",
                    "put_many 100",
                    d,
                    nb,
                    lambda w, d=d: raw_loops.lmdb_put_batches(w, nb, payload, d, 100),
                    note="100 puts per write transaction",
                ),
                Case(
                    "raw lmdb",
                    "put_many 1000",
                    d,
                    nb,
                    lambda w, d=d: raw_loops.lmdb_put_batches(w, nb, payload, d, 1_000),
                    note="1,000 puts per write transaction",
                ),
                Case(
                    "raw lmdb",
                    "put all in 1 txn",
                    d,
                    nb,
                    lambda w, d=d: raw_loops.lmdb_put_batches(w, nb, payload, d, nb),
                    note="every put in one write transaction",
                ),
            ]

    for target in TARGETS:
        engine = f"localqueue {target.scheme}"
        if not wanted(engine):
            continue
        reason = unavailable_reason(target)
        if reason is not None:
            skipped.append(f"{engine} ({target.durability}): {reason}")
            continue
        spec = _localqueue_spec(target)
        family = {"sqlite": "sqlite3", "lmdb": "lmdb"}.get(target.scheme)
        d = target.durability

        def base(operation: str, family: str | None = family, d: str = d) -> str | None:
            return None if family is None else _raw(family, operation, d)

        cases += [
            Case(engine, "put", d, n, _op_put(spec, target, n, size), base("put")),
            Case(engine, "get+ack", d, n, _op_get_ack(spec, target, n, size), base("get+ack")),
            Case(
                engine,
                "put_many 100",
                d,
                nb,
                _op_put_batches(spec, target, nb, size, 100),
                base("put_many 100"),
            ),
            Case(
                engine,
                "lease+ack batch 100",
                d,
                nb,
                _op_lease_ack_batch(spec, target, nb, size, 100),
                base("lease+ack batch 100") if target.scheme == "sqlite" else None,
            ),
        ]
        if target.scheme in {"lmdb", "memory"}:
            cases.append(
                Case(
                    engine,
                    "put_many 1000",
                    d,
                    nb,
                    _op_put_batches(spec, target, nb, size, 1_000),
                    base("put_many 1000"),
                )
            )

    for kind, note in PEERS.items():
        if not wanted(kind):
            continue
        reason = peer_unavailable(kind)
        if reason is not None:
            skipped.append(f"{kind}: {reason}")
            continue
        for d in SQLITE_LEVELS:
            spec = _peer_spec(kind, d)
            cases += [
                Case(
                    kind, "put", d, n, _op_put(spec, None, n, size), _raw("sqlite3", "put", d), note
                ),
                Case(
                    kind,
                    "get+ack",
                    d,
                    n,
                    _op_get_ack(spec, None, n, size),
                    _raw("sqlite3", "get+ack", d),
                    note,
                ),
            ]
            if kind == "liteq":
                cases.append(
                    Case(
                        kind,
                        "put_many 50",
                        d,
                        nb,
                        _op_put_batches(spec, None, nb, size, 50),
                        _raw("sqlite3", "put_many 50", d),
                        note,
                    )
                )
    return cases, skipped


# -- multi-process, latency, memory ----------------------------------------------------------------


def _mp_engines(
    workdir_for: Callable[[str], Path], only: set[str] | None
) -> list[tuple[str, EngineSpec, StoreTarget | None, str]]:
    """(engine, spec, localqueue target or None, consumer) for the end-to-end run."""
    from localqueue import Capability
    from localqueue.registry import get_backend

    engines: list[tuple[str, EngineSpec, StoreTarget | None, str]] = []
    for target in TARGETS:
        engine = f"localqueue {target.scheme}"
        if only is not None and not any(word in engine for word in only):
            continue
        if unavailable_reason(target) is not None:
            continue
        if Capability.MULTI_PROCESS not in get_backend(target.scheme).capabilities:
            continue
        url = target.url(workdir_for(f"{target.label}-mp"), "msgpack")
        engines.append(
            (engine, EngineSpec("localqueue", target.durability, url), target, LOCALQUEUE_CONSUMER)
        )
    for kind, note in PEERS.items():
        if (only is not None and not any(word in kind for word in only)) or peer_unavailable(kind):
            continue
        for d in SQLITE_LEVELS:
            location = peer_location(kind, workdir_for(f"{kind}-{d}-mp"))
            engines.append((kind, EngineSpec(kind, d, location), None, note))
    return engines


def run_multi_process(
    spec: EngineSpec, count: int, size: int, idle_seconds: float, workdir: Path
) -> dict[str, Any]:
    """1 producer + 2 consumer processes; throughput, lost and duplicated messages."""
    ctx = multiprocessing.get_context("spawn")
    # Create the schema once, before the processes race to do it.
    open_engine(spec).close()
    role: Callable[..., None] = consumer
    if spec.kind == "localqueue":
        from localqueue import open_attempt_store

        open_attempt_store(spec.location).close()
        role = worker_consumer
    barrier = ctx.Barrier(4)
    stop = ctx.Event()
    counts = ctx.RawArray("q", 2)
    last_ack = ctx.RawArray("d", 2)
    done_at = ctx.Value("d", 0.0)
    outs = [str(workdir / f"consumer-{i}.ids") for i in range(2)]
    procs = [ctx.Process(target=producer, args=(spec, count, size, barrier, done_at))]
    procs += [
        ctx.Process(target=role, args=(spec, i, barrier, stop, counts, last_ack, outs[i]))
        for i in range(2)
    ]
    for proc in procs:
        proc.start()
    try:
        barrier.wait(timeout=120)
        start = time.monotonic()
        procs[0].join()
        progress, seen = time.monotonic(), -1
        while sum(counts) < count:
            time.sleep(0.02)
            total = sum(counts)
            if total != seen:
                progress, seen = time.monotonic(), total
            elif time.monotonic() - progress > idle_seconds:
                break
        stop.set()
        for proc in procs[1:]:
            proc.join(timeout=60)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join()
    acked: Counter[int] = Counter()
    for out in outs:
        text = Path(out).read_text(encoding="ascii") if Path(out).exists() else ""
        acked.update(int(line) for line in text.split())
    end = max(last_ack) if any(last_ack) else time.monotonic()
    unique = len(acked)
    return {
        "msgs_per_s": unique / (end - start) if end > start else 0.0,
        "lost": count - len(acked.keys() & set(range(count))),
        "duplicated": sum(1 for c in acked.values() if c > 1),
        "extra_deliveries": sum(c - 1 for c in acked.values() if c > 1),
        "exit_codes": [proc.exitcode for proc in procs],
    }


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1e3, p99 * 1e3


def latency_same_process(url: str, samples: int) -> list[float]:
    """Seconds from a ``put`` returning to a consumer thread waking in ``get_message``."""
    from localqueue import PersistentQueue, open_queue_store

    store = open_queue_store(url)
    producer_q, consumer_q = PersistentQueue("latency", store), PersistentQueue("latency", store)
    ready, woke = threading.Event(), threading.Event()
    wake_times: list[float] = []

    def consume() -> None:
        for _ in range(samples):
            ready.set()
            message = consumer_q.get_message(block=True, timeout=30)
            wake_times.append(time.monotonic())
            consumer_q.ack(message)
            woke.set()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    latencies: list[float] = []
    try:
        for _ in range(samples):
            ready.wait(30)
            ready.clear()
            time.sleep(0.005)  # let the consumer settle into its wait
            producer_q.put("x")
            put_returned = time.monotonic()
            if not woke.wait(30):
                raise RuntimeError("the waiting consumer never woke")
            woke.clear()
            latencies.append(max(0.0, wake_times[-1] - put_returned))
        thread.join(30)
    finally:
        store.close()
    return latencies


def latency_cross_process(url: str, samples: int) -> list[float]:
    """Seconds from a ``put`` returning to a consumer process waking in ``get_message``."""
    from localqueue import PersistentQueue

    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=waiter, args=(url, samples, ready, send))
    latencies: list[float] = []
    with PersistentQueue("latency", url) as queue:
        proc.start()
        send.close()
        try:
            for _ in range(samples):
                if not ready.wait(60):
                    raise RuntimeError("the waiting process never got ready")
                ready.clear()
                time.sleep(0.01)
                queue.put("x")
                put_returned = time.monotonic()
                if not receive.poll(30):
                    raise RuntimeError("the waiting process never woke")
                latencies.append(max(0.0, receive.recv() - put_returned))
            proc.join(30)
        finally:
            if proc.is_alive():
                proc.terminate()
                proc.join()
    return latencies


def memory_growth(target: StoreTarget, count: int, size: int, workdir: Path) -> tuple[int, int]:
    """RSS (KiB) of a consumer process after warm-up and after ``count`` messages."""
    ctx = multiprocessing.get_context("spawn")
    url = target.url(workdir, "msgpack")
    spec = EngineSpec("localqueue", target.durability, url)
    fill_here = target.scheme != "memory"
    if fill_here:
        with _opened(spec, None) as queue:
            _fill(queue, _bodies(count, size))
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=consume_for_memory, args=(url, count, size, not fill_here, send))
    proc.start()
    send.close()
    try:
        start_rss, end_rss = receive.recv()
        proc.join(60)
    finally:
        if proc.is_alive():
            proc.terminate()
            proc.join()
        target.cleanup(url)
    return start_rss, end_rss


# -- the run ---------------------------------------------------------------------------------------


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def filesystem(path: Path) -> str:
    """The type of the file system holding ``path`` (from ``/proc/mounts``): fsync costs differ.

    On ``tmpfs`` an fsync costs nothing, so FULL and sync rows would mean nothing.
    """
    best, kind = "", "unknown"
    resolved = str(path.resolve())
    with contextlib.suppress(OSError), open("/proc/mounts", encoding="utf-8") as mounts:
        for line in mounts:
            parts = line.split()
            mount_point, fs_type = parts[1], parts[2]
            inside = resolved == mount_point or resolved.startswith(mount_point.rstrip("/") + "/")
            if inside and len(mount_point) > len(best):
                best, kind = mount_point, fs_type
    return kind


def environment(args: argparse.Namespace, sizes: Sizes) -> dict[str, Any]:
    """The machine and versions, printed above the tables and saved in the JSON."""
    try:
        import lmdb

        lmdb_version = ".".join(map(str, lmdb.version()))
    except ImportError:
        lmdb_version = "not installed"
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "lmdb": lmdb_version,
        "packages": {d: _version(d) for d in ("localqueue", "persist-queue", "huey", "litequeue")},
        "workdir": f"{args.workdir} ({filesystem(args.workdir)})",
        "runs": args.runs,
        "quick": args.quick,
        "payload_bytes": args.payload_size,
        "sizes": asdict(sizes),
        "sqlite_journal_mode": "WAL for every SQLite engine",
    }


def _fmt_rate(value: float | None) -> str:
    return "failed" if value is None else f"{value:,.0f}"


def print_table(title: str, headers: list[str], rows: list[list[str]]) -> None:
    """A plain fixed-width table."""
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    print(f"\n## {title}\n")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _durability_label(engine: str, durability: str) -> str:
    if durability in SQLITE_LEVELS and "lmdb" not in engine:
        return f"synchronous={durability.upper()}"
    return durability


def report(results: list[Result], env: dict[str, Any], skipped: list[str]) -> None:
    """Print every table."""
    by_key = {r.key: r for r in results}
    print("# localqueue comparison")
    if "(tmpfs)" in env["workdir"]:
        print("\n**warning: the workdir is on tmpfs (fsync is free): pass --workdir on a disk**\n")
    for name, value in env.items():
        print(f"- {name}: {value}")
    print(
        "- durability: "
        + "; ".join(
            f"{scheme} {level} survives {text}"
            for (scheme, level), text in DURABILITY_NOTES.items()
        )
    )
    rows = []
    for r in (r for r in results if r.section == "single"):
        ratio = ""
        base = by_key.get(r.baseline) if r.baseline else None
        if base is not None and base.median and r.median is not None:
            ratio = f"{r.median / base.median:.0%}"
        rows.append(
            [
                r.engine,
                r.operation,
                _durability_label(r.engine, r.durability),
                _fmt_rate(r.median),
                ratio,
                r.note,
            ]
        )
    print_table(
        f"Single process, msgs/s, median of {env['runs']} runs"
        " ('vs raw': the raw loop at the same durability)",
        ["engine", "operation", "durability", "msgs/s", "vs raw", "notes"],
        rows,
    )
    mp = [r for r in results if r.section == "multi-process"]
    if mp:
        print_table(
            "1 producer + 2 consumer processes"
            " (lost: put, never acked; duplicated: acked more than once)",
            ["engine", "durability", "msgs/s", "lost", "duplicated", "consumer"],
            [
                [
                    r.engine,
                    _durability_label(r.engine, r.durability),
                    _fmt_rate(r.median),
                    str(r.extra.get("lost", "?")),
                    str(r.extra.get("duplicated", "?")),
                    r.note,
                ]
                for r in mp
            ],
        )
    lat = [r for r in results if r.section == "latency"]
    if lat:
        print_table(
            "Blocking get wake-up after a put returns, ms",
            ["engine", "durability", "where", "p50", "p99"],
            [
                [
                    r.engine,
                    r.durability,
                    r.operation,
                    f"{r.extra['p50_ms']:.3f}",
                    f"{r.extra['p99_ms']:.3f}",
                ]
                for r in lat
            ],
        )
    mem = [r for r in results if r.section == "memory"]
    if mem:
        print_table(
            "Consumer memory growth (RSS after warm-up -> after all messages)",
            ["engine", "durability", "messages", "start MiB", "end MiB", "growth MiB"],
            [
                [
                    r.engine,
                    r.durability,
                    f"{r.extra['messages']:,}",
                    f"{r.extra['start_kib'] / 1024:.1f}",
                    f"{r.extra['end_kib'] / 1024:.1f}",
                    f"{(r.extra['end_kib'] - r.extra['start_kib']) / 1024:.1f}",
                ]
                for r in mem
            ],
        )
    failed = [r for r in results if r.extra.get("errors")]
    if skipped or failed:
        print("\n## Left out or failed\n")
        for line in skipped:
            print(f"- {line}")
        for r in failed:
            print(f"- {r.engine} {r.operation} ({r.durability}): {r.extra['errors'][0]}")


def _record(
    results: dict[str, Result], result: Result, value: float | None, error: str | None = None
) -> Result:
    kept = results.setdefault(result.key, result)
    if value is not None:
        kept.values.append(value)
    if error is not None:
        kept.extra.setdefault("errors", []).append(error)
    return kept


def run(args: argparse.Namespace) -> list[Result]:
    """Run every part ``args`` asks for, ``args.runs`` times; return the merged rows."""
    sizes = QUICK if args.quick else FULL
    if args.messages:
        sizes = Sizes(
            args.messages,
            args.messages * 10,
            args.messages,
            sizes.latency_samples,
            sizes.memory_messages,
            sizes.idle_seconds,
        )
    only = set(args.only.split(",")) if args.only else None
    payload = b"x" * args.payload_size
    cases, skipped = build_cases(sizes, payload, only)
    results: dict[str, Result] = {}
    env = environment(args, sizes)
    for run_index in range(args.runs):
        run_dir = Path(tempfile.mkdtemp(prefix=f"run{run_index}-", dir=args.workdir))
        try:
            for number, case in enumerate(cases):
                print(
                    f"[run {run_index + 1}/{args.runs}] {case.engine} {case.operation}"
                    f" ({case.durability})",
                    file=sys.stderr,
                )
                workdir = run_dir / f"case{number}"
                workdir.mkdir()
                row = Result(
                    "single",
                    case.engine,
                    case.operation,
                    case.durability,
                    "msgs/s",
                    baseline=case.baseline,
                    note=case.note,
                )
                try:
                    seconds = case.run(workdir)
                    _record(results, row, case.count / seconds)
                except Exception as exc:
                    _record(results, row, None, f"{type(exc).__name__}: {exc}")
                finally:
                    shutil.rmtree(workdir, ignore_errors=True)
            if not args.skip_multi_process:
                _run_multi_process(results, run_dir, sizes, args, only)
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
    run_dir = Path(tempfile.mkdtemp(prefix="once-", dir=args.workdir))
    try:
        if not args.skip_latency:
            _run_latency(results, run_dir, sizes, only)
        if not args.skip_memory:
            _run_memory(results, run_dir, sizes, args, only)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    ordered = list(results.values())
    report(ordered, env, skipped)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "environment": env,
                    "skipped": skipped,
                    "results": [asdict(r) | {"median": r.median} for r in ordered],
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        print(f"\nSaved {args.json}")
    return ordered


def _mkdir(parent: Path, name: str) -> Path:
    path = parent / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run_multi_process(
    results: dict[str, Result],
    run_dir: Path,
    sizes: Sizes,
    args: argparse.Namespace,
    only: set[str] | None,
) -> None:
    for engine, spec, target, note in _mp_engines(lambda name: _mkdir(run_dir, name), only):
        print(f"[multi-process] {engine} ({spec.durability})", file=sys.stderr)
        row = Result(
            "multi-process",
            engine,
            "1 producer + 2 consumers",
            spec.durability,
            "msgs/s",
            note=note,
        )
        workdir = _mkdir(run_dir, f"{engine.replace(' ', '-')}-{spec.durability}-ids")
        try:
            outcome = run_multi_process(
                spec, sizes.multi_process, args.payload_size, sizes.idle_seconds, workdir
            )
            kept = _record(results, row, outcome["msgs_per_s"])
            # Lost and duplicated are summed over runs: any loss in any run counts.
            for name in ("lost", "duplicated", "extra_deliveries"):
                kept.extra[name] = kept.extra.get(name, 0) + outcome[name]
            kept.extra.setdefault("exit_codes", []).append(outcome["exit_codes"])
        except Exception as exc:
            _record(results, row, None, f"{type(exc).__name__}: {exc}")
        finally:
            if target is not None:
                target.cleanup(spec.location)


def _run_latency(
    results: dict[str, Result], run_dir: Path, sizes: Sizes, only: set[str] | None
) -> None:
    from localqueue import Capability
    from localqueue.registry import get_backend

    for target in TARGETS:
        engine = f"localqueue {target.scheme}"
        if (only is not None and not any(w in engine for w in only)) or unavailable_reason(target):
            continue
        modes: list[tuple[str, Callable[[str, int], list[float]]]] = [
            ("same process", latency_same_process)
        ]
        if Capability.MULTI_PROCESS in get_backend(target.scheme).capabilities:
            modes.append(("cross process", latency_cross_process))
        for where, measure in modes:
            print(f"[latency] {engine} ({target.durability}) {where}", file=sys.stderr)
            url = target.url(_mkdir(run_dir, f"{target.label}-lat-{where[:5]}"), "msgpack")
            row = Result("latency", engine, where, target.durability, "ms")
            try:
                p50, p99 = _percentiles(measure(url, sizes.latency_samples))
                kept = _record(results, row, p50)
                kept.extra.update({"p50_ms": p50, "p99_ms": p99, "samples": sizes.latency_samples})
            except Exception as exc:
                _record(results, row, None, f"{type(exc).__name__}: {exc}")
            finally:
                target.cleanup(url)


def _run_memory(
    results: dict[str, Result],
    run_dir: Path,
    sizes: Sizes,
    args: argparse.Namespace,
    only: set[str] | None,
) -> None:
    for target in TARGETS:
        engine = f"localqueue {target.scheme}"
        if target.durability in {"full", "sync"}:
            continue  # the fastest setting moves the most messages per second: the harshest test
        if (only is not None and not any(w in engine for w in only)) or unavailable_reason(target):
            continue
        print(f"[memory] {engine} ({target.durability})", file=sys.stderr)
        row = Result(
            "memory", engine, "consume", target.durability, "KiB", note=LOCALQUEUE_CONSUMER
        )
        try:
            start_kib, end_kib = memory_growth(
                target,
                sizes.memory_messages,
                args.payload_size,
                _mkdir(run_dir, f"{target.label}-mem"),
            )
            kept = _record(results, row, float(end_kib - start_kib))
            kept.extra.update(
                {"messages": sizes.memory_messages, "start_kib": start_kib, "end_kib": end_kib}
            )
        except Exception as exc:
            _record(results, row, None, f"{type(exc).__name__}: {exc}")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes: a smoke test, not a measurement"
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=3,
        help="repeat the throughput parts; report the median (default 3)",
    )
    parser.add_argument("--json", metavar="PATH", help="also save every result as JSON")
    parser.add_argument(
        "--payload-size", type=int, default=100, help="bytes per message (default 100)"
    )
    parser.add_argument(
        "--messages",
        type=int,
        default=0,
        help="override the per-call message count (batches move 10x)",
    )
    parser.add_argument(
        "--only", help="comma-separated words; run only engines whose name contains one"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()),
        help="where databases are created (its disk decides fsync cost)",
    )
    parser.add_argument("--skip-multi-process", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = run(args)
    return 1 if any(r.extra.get("errors") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
