"""Conformance tests with several OS processes on one store (``Capability.MULTI_PROCESS``)."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from localqueue._models import Capability
from localqueue.protocols import AttemptStore, QueueStore
from localqueue.testing import _processes
from localqueue.testing._base import StoreSuiteBase

__all__ = ["MultiProcessSuite"]


def _run(targets: list[tuple[Callable[..., None], tuple[object, ...]]], timeout: float) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=fn, args=args) for fn, args in targets]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join(timeout)
        codes = [p.exitcode for p in procs]
        assert codes == [0] * len(procs), f"child processes exited with {codes}"
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()


class MultiProcessSuite(StoreSuiteBase):
    """Producers and consumers in separate processes lose nothing and ack nothing twice."""

    processes_messages: int = 300

    def test_two_producers_two_consumers(
        self,
        store_url: str,
        capabilities: frozenset[Capability],
        tmp_path: Path,
        make_queue_store: Callable[[], QueueStore],
    ) -> None:
        self.require(capabilities, Capability.MULTI_PROCESS)
        n = self.processes_messages
        expected = 2 * n
        _run(
            [
                (_processes.produce, (store_url, "p1", n, 1)),
                (_processes.produce, (store_url, "p2", n, 25)),
                (_processes.consume, (store_url, str(tmp_path / "acked-1.log"), expected, 240.0)),
                (_processes.consume, (store_url, str(tmp_path / "acked-2.log"), expected, 240.0)),
            ],
            timeout=300,
        )
        acked = Counter(
            line for p in tmp_path.glob("acked-*.log") for line in p.read_text().splitlines()
        )
        produced = {f"p{k}-{i}" for k in (1, 2) for i in range(n)}
        assert set(acked) == produced, "messages lost"
        assert max(acked.values()) == 1, "a message was acked twice"
        assert make_queue_store().stats(_processes.QUEUE).total == 0
        leases = _processes.read_lease_log(tmp_path.glob("*.leases"))
        assert len(leases) >= expected
        assert _processes.overlapping_leases(leases, margin=0.1) == []

    def test_short_leases_expire_to_one_consumer_at_a_time(
        self,
        store_url: str,
        capabilities: frozenset[Capability],
        tmp_path: Path,
        make_queue_store: Callable[[], QueueStore],
    ) -> None:
        """Half-second single leases, some abandoned to expire: never two holders at once."""
        self.require(capabilities, Capability.MULTI_PROCESS)
        n = 60
        consumers = [
            (
                _processes.consume,
                (store_url, str(tmp_path / f"acked-{k}.log"), n, 120.0, 0.5, 1, 7),
            )
            for k in range(3)
        ]
        _run([(_processes.produce, (store_url, "p", n, 10)), *consumers], timeout=180)
        acked = Counter(
            line for p in tmp_path.glob("acked-*.log") for line in p.read_text().splitlines()
        )
        assert set(acked) == {f"p-{i}" for i in range(n)}, "messages lost"
        assert max(acked.values()) == 1, "a message was acked twice"
        leases = _processes.read_lease_log(tmp_path.glob("*.leases"))
        assert len(leases) > n, "no abandoned lease was delivered again"
        assert _processes.overlapping_leases(leases, margin=0.1) == []

    def test_attempt_counts_from_two_processes_add_up(
        self,
        store_url: str,
        capabilities: frozenset[Capability],
        make_attempt_store: Callable[[], AttemptStore],
    ) -> None:
        self.require(capabilities, Capability.MULTI_PROCESS)
        _run(
            [(_processes.count_attempts, (store_url, "shared", 100)) for _ in range(2)],
            timeout=120,
        )
        record = make_attempt_store().get_record("shared")
        assert record is not None
        assert record.attempts == 200
