"""A Hypothesis state machine that holds any queue store against the in-memory reference.

Random sequences of put, put_many, lease, ack, ack_many, release, extend,
dead_letter, requeue, purge and clock advances run on the store under test
and on a :class:`~localqueue.stores.memory.MemoryQueueStore` sharing its fake
clock; after every step both must agree on every message's state, attempts,
priority, payload and error, and on the stats. Stores whose clock cannot be
injected run the same machine without delays, expiring leases or advances.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from localqueue.protocols import QueueStore
from localqueue.stores.memory import MemoryQueueStore
from localqueue.testing._base import FakeClock, StoreSuiteBase

__all__ = ["ModelSuite", "build_model_machine"]

LONG = 10_000.0
_names = itertools.count()


def build_model_machine(store: QueueStore, clock: FakeClock | None) -> type[RuleBasedStateMachine]:
    """A state machine class comparing ``store`` with the memory reference."""
    timed = clock is not None
    delays = st.sampled_from([0.0, 0.0, 2.0, 5.0]) if timed else st.just(0.0)
    lease_timeouts = st.sampled_from([LONG, 3.0]) if timed else st.just(LONG)

    class StoreMatchesModel(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.queue = f"model-{next(_names)}"
            self.model = MemoryQueueStore(clock=clock)
            self.store = store
            self.ids: dict[str, str] = {}  # model id -> store id
            self.leases: list[tuple[Any, Any]] = []  # (model message, store message)
            self.payloads = itertools.count()

        def teardown(self) -> None:
            self.model.close()
            self.store.purge(self.queue, "all")

        def _pair(self, model_id: str, store_id: str) -> None:
            known = self.ids.setdefault(model_id, store_id)
            assert known == store_id, "the store returned another message than the model"

        # -- producing ---------------------------------------------------------

        @rule(
            priority=st.sampled_from([-1, 0, 0, 1]),
            delay=delays,
            dedup=st.sampled_from([None, None, "a", "b"]),
        )
        def put(self, priority: int, delay: float, dedup: str | None) -> None:
            payload = str(next(self.payloads)).encode()
            options: dict[str, Any] = {"delay": delay, "priority": priority, "dedup_key": dedup}
            m = self.model.put(self.queue, payload, codec="msgpack", **options)
            s = self.store.put(self.queue, payload, codec="msgpack", **options)
            self._pair(m.id, s.id)

        @rule(n=st.integers(0, 4), delay=delays)
        def put_many(self, n: int, delay: float) -> None:
            payloads = [str(next(self.payloads)).encode() for _ in range(n)]
            ms = self.model.put_many(self.queue, payloads, codec="msgpack", delay=delay)
            ss = self.store.put_many(self.queue, payloads, codec="msgpack", delay=delay)
            assert len(ms) == len(ss)
            for m, s in zip(ms, ss, strict=True):
                self._pair(m.id, s.id)

        # -- consuming ---------------------------------------------------------

        @rule(limit=st.integers(1, 3), lease_timeout=lease_timeouts)
        def lease(self, limit: int, lease_timeout: float) -> None:
            ms = self.model.lease(self.queue, lease_timeout=lease_timeout, limit=limit)
            ss = self.store.lease(self.queue, lease_timeout=lease_timeout, limit=limit)
            assert [self.ids[m.id] for m in ms] == [s.id for s in ss]
            self.leases.extend(zip(ms, ss, strict=True))

        @precondition(lambda self: self.leases)
        @rule(i=st.integers(0, 50), action=st.sampled_from(["ack", "release", "dead", "extend"]))
        def settle(self, i: int, action: str) -> None:
            m, s = self.leases[i % len(self.leases)]
            if action == "ack":
                got = (
                    self.model.ack(self.queue, m.id, lease_token=m.lease_token),
                    self.store.ack(self.queue, s.id, lease_token=s.lease_token),
                )
            elif action == "release":
                got = (
                    self.model.release(self.queue, m.id, lease_token=m.lease_token, error="r"),
                    self.store.release(self.queue, s.id, lease_token=s.lease_token, error="r"),
                )
            elif action == "dead":
                got = (
                    self.model.dead_letter(self.queue, m.id, lease_token=m.lease_token, error="d"),
                    self.store.dead_letter(self.queue, s.id, lease_token=s.lease_token, error="d"),
                )
            else:
                got = (
                    self.model.extend(self.queue, m.id, lease_token=m.lease_token, lease_timeout=4),
                    self.store.extend(self.queue, s.id, lease_token=s.lease_token, lease_timeout=4),
                )
            assert got[0] == got[1], f"{action}: model {got[0]}, store {got[1]}"

        @precondition(lambda self: self.leases)
        @rule(k=st.integers(1, 4))
        def ack_many(self, k: int) -> None:
            chosen = self.leases[-k:]
            got_model = self.model.ack_many(self.queue, [(m.id, m.lease_token) for m, _ in chosen])
            got_store = self.store.ack_many(self.queue, [(s.id, s.lease_token) for _, s in chosen])
            assert got_model == got_store

        @rule(everything=st.booleans())
        def requeue(self, everything: bool) -> None:
            if everything:
                got = (self.model.requeue_dead(self.queue), self.store.requeue_dead(self.queue))
            else:
                dead = self.model.dead_letters(self.queue, limit=1)
                ids = [d.id for d in dead]
                got = (
                    self.model.requeue_dead(self.queue, ids),
                    self.store.requeue_dead(self.queue, [self.ids[i] for i in ids]),
                )
            assert got[0] == got[1]

        @rule(what=st.sampled_from(["ready", "dead", "all"]))
        def purge(self, what: Any) -> None:
            assert self.model.purge(self.queue, what) == self.store.purge(self.queue, what)

        if timed:

            @rule(seconds=st.sampled_from([0.5, 1.0, 2.5, 6.0]))
            def advance(self, seconds: float) -> None:
                assert clock is not None
                clock.advance(seconds)

        # -- agreement ---------------------------------------------------------

        @invariant()
        def same_stats(self) -> None:
            assert self.model.stats(self.queue) == self.store.stats(self.queue)

        @invariant()
        def same_messages(self) -> None:
            for model_id, store_id in self.ids.items():
                m = self.model.inspect(self.queue, model_id)
                s = self.store.inspect(self.queue, store_id)
                if m is None or s is None:
                    assert m is None, f"{model_id}: only the store lost it"
                    assert s is None, f"{store_id}: the store kept a message the model lost"
                    continue
                expected = (m.state, m.attempts, m.priority, m.payload, m.last_error, m.dedup_key)
                actual = (s.state, s.attempts, s.priority, s.payload, s.last_error, s.dedup_key)
                assert expected == actual

        @invariant()
        def same_next(self) -> None:
            m = self.model.peek(self.queue)
            s = self.store.peek(self.queue)
            assert (None if m is None else self.ids[m.id]) == (None if s is None else s.id)

    return StoreMatchesModel


class ModelSuite(StoreSuiteBase):
    """The store behaves like the in-memory reference under random operation sequences."""

    model_max_examples: int = 30
    model_steps: int = 30

    def test_store_matches_the_reference_model(
        self, make_queue_store: Callable[[], QueueStore], clock: FakeClock | None
    ) -> None:
        machine = build_model_machine(make_queue_store(), clock)
        machine.TestCase.settings = settings(
            max_examples=self.model_max_examples,
            stateful_step_count=self.model_steps,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        )
        machine.TestCase().runTest()
