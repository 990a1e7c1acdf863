"""The end-to-end parts of the comparison: producer/consumer processes, latency, memory.

Each function starts the roles of ``processes.py`` with ``spawn`` and returns
what it measured; ``compare.py`` records and prints it.
"""

from __future__ import annotations

import multiprocessing
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_stores import TARGETS, StoreTarget, unavailable_reason
from cases import SQLITE_LEVELS, bodies, fill, opened
from peers import PEERS, EngineSpec, open_engine, peer_location, peer_unavailable
from processes import (
    LOCALQUEUE_CONSUMER,
    consume_for_memory,
    consumer,
    producer,
    waiter,
    worker_consumer,
)

__all__ = [
    "depth_get_ack",
    "latency_cross_process",
    "latency_same_process",
    "memory_growth",
    "mp_engines",
    "percentiles",
    "run_multi_process",
]


def mp_engines(
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


def percentiles(samples: list[float]) -> tuple[float, float]:
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
        with opened(spec, None) as queue:
            fill(queue, bodies(count, size))
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


def depth_get_ack(target: StoreTarget, depth: int, count: int, size: int, workdir: Path) -> float:
    """get+ack msgs/s with ``depth`` messages queued; an untimed put before each keeps the depth.

    Only the get+ack is timed, so commit costs that come due during a put
    (a WAL checkpoint, LMDB free-page reuse) fall outside the measurement.
    """
    from localqueue import PersistentQueue

    url = target.url(workdir, "msgpack")
    texts = bodies(min(depth, 1_000), size)
    queue = PersistentQueue("depth", url)
    try:
        for first in range(0, depth, len(texts)):
            queue.put_many(texts[: min(len(texts), depth - first)])
        timed = 0.0
        for number in range(count):
            queue.put(texts[number % len(texts)])
            start = time.perf_counter()
            message = queue.get_message(block=False)
            _ = message.value
            queue.ack(message)
            timed += time.perf_counter() - start
        return count / timed
    finally:
        queue.close()
        target.cleanup(url)
