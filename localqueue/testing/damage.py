"""Conformance tests for damaged records, through the ``DamageInjectable`` test hook.

One record of a queue is damaged on purpose while the messages around it stay
intact. Whatever the damage, the store must:

* report it: ``check_integrity()`` (where the store has it) names the message;
* never let it block the rest: every lease, batch or single, delivers the intact
  messages in order and never raises because of the damaged one;
* never hide it: a record that cannot be read becomes a dead letter whose
  ``last_error`` says it was damaged; an index entry whose record is gone is
  dropped with a logged warning naming the id, and stops being counted;
* mend it on request: ``repair()`` (where the store has it) does the same in one
  call, names what it did, and has nothing left to do when called again.

Stores that do not implement the hook, or cannot plant a kind of damage, skip
the matching tests.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import get_args

import pytest

from localqueue._models import MessageState
from localqueue.errors import ConfigurationError
from localqueue.protocols import (
    Damage,
    DamageInjectable,
    IntegrityCheckable,
    QueueStore,
    Repairable,
)
from localqueue.testing.queue_store import QueueStoreCase

__all__ = ["DamageSuite"]

Q = "damaged"
LONG = 3600.0
ALL_DAMAGE: tuple[Damage, ...] = get_args(Damage)


def _require(store: object, how: Damage) -> DamageInjectable:
    if not isinstance(store, DamageInjectable):
        pytest.skip("store does not implement DamageInjectable")
    if how not in store.damages:
        pytest.skip(f"store cannot plant {how!r} damage")
    return store


@dataclass
class Damaged:
    """Three messages of :data:`Q`, the middle one damaged."""

    store: QueueStore
    good: list[str]
    bad: str
    how: Damage


class DamageSuite(QueueStoreCase):
    """A damaged record is reported, moved aside or dropped, and never blocks its queue."""

    @pytest.fixture(params=ALL_DAMAGE)
    def damaged(self, request: pytest.FixtureRequest, store: QueueStore) -> Damaged:
        """``a``, ``b``, ``c`` put in order; ``b`` damaged as the parameter says."""
        how: Damage = request.param
        injectable = _require(store, how)
        ids = [self.put(store, p, queue=Q).id for p in (b"a", b"b", b"c")]
        self.put(store, b"elsewhere", queue="bystander")
        injectable.damage_record(Q, ids[1], how)
        return Damaged(store, [ids[0], ids[2]], ids[1], how)

    @staticmethod
    def drain(store: QueueStore, limit: int) -> list[str]:
        """Lease and ack until the queue has nothing more to give; the ids delivered."""
        delivered: list[str] = []
        for _ in range(10):
            leased = store.lease(Q, lease_timeout=LONG, limit=limit)
            if not leased:
                break
            for m in leased:
                delivered.append(m.id)
                assert store.ack(Q, m.id, lease_token=m.lease_token)
        return delivered

    def assert_settled(self, d: Damaged) -> None:
        """After delivery or repair: the damaged message is a dead letter or gone, and said so."""
        store = d.store
        stats = store.stats(Q)
        assert (stats.ready, stats.delayed, stats.inflight) == (0, 0, 0), stats
        dead = {m.id: m for m in store.dead_letters(Q)}
        if d.how == "record":
            assert d.bad in dead, "a damaged record must be kept as a dead letter"
            assert stats.dead == 1
            message = store.inspect(Q, d.bad)
            assert message is not None
            assert message.state is MessageState.DEAD
            assert message.last_error
            assert "damaged" in message.last_error.lower()
        else:
            assert stats.dead == 0, "a record that is gone cannot be a dead letter"
            assert not dead
            assert store.inspect(Q, d.bad) is None
        if isinstance(store, IntegrityCheckable):
            assert store.check_integrity() == []
        # The other queue never noticed.
        assert store.stats("bystander").ready == 1

    def test_damage_hook_refuses_unknown_damage(self, store: QueueStore) -> None:
        if not isinstance(store, DamageInjectable):
            pytest.skip("store does not implement DamageInjectable")
        m = self.put(store, b"x", queue=Q)
        with pytest.raises(ConfigurationError):
            store.damage_record(Q, m.id, "melted")  # type: ignore[arg-type]
        assert store.inspect(Q, m.id) is not None

    def test_integrity_check_names_the_damaged_message(self, damaged: Damaged) -> None:
        if not isinstance(damaged.store, IntegrityCheckable):
            pytest.skip("store does not implement IntegrityCheckable")
        problems = damaged.store.check_integrity()
        assert problems, "check_integrity must report planted damage"
        assert any(damaged.bad in line for line in problems), problems
        assert not any(good in line for line in problems for good in damaged.good), problems

    def test_stats_and_listings_do_not_raise(self, damaged: Damaged) -> None:
        store = damaged.store
        stats = store.stats(Q)
        # The damaged message may be counted as a dead letter already, or not yet.
        assert stats.ready >= 2
        store.dead_letters(Q)
        store.peek(Q)
        for good in damaged.good:
            message = store.inspect(Q, good)
            assert message is not None
            assert message.state is MessageState.READY
        store.inspect(Q, damaged.bad)
        assert Q in store.queues()

    @pytest.mark.parametrize("limit", [1, 10])
    def test_damaged_record_never_blocks_the_queue(
        self, damaged: Damaged, limit: int, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.WARNING):
            delivered = self.drain(damaged.store, limit)
        assert delivered == damaged.good
        assert any(damaged.bad in r.getMessage() for r in caplog.records), (
            "moving a damaged record aside must log a warning naming it"
        )
        self.assert_settled(damaged)

    def test_damaged_dead_letter_can_be_purged(self, damaged: Damaged) -> None:
        store = damaged.store
        self.drain(store, 10)
        store.purge(Q, "all")
        assert store.stats(Q).total == 0
        assert store.inspect(Q, damaged.bad) is None

    def test_repair_moves_damage_aside_and_leaves_the_rest(self, damaged: Damaged) -> None:
        store = damaged.store
        if not isinstance(store, Repairable):
            pytest.skip("store does not implement Repairable")
        done = store.repair()
        assert any(damaged.bad in line for line in done), done
        assert store.repair() == []
        for good in damaged.good:
            message = store.inspect(Q, good)
            assert message is not None
            assert message.state is MessageState.READY
        assert self.drain(store, 1) == damaged.good
        self.assert_settled(damaged)

    def test_repair_of_a_healthy_store_changes_nothing(self, store: QueueStore) -> None:
        if not isinstance(store, Repairable):
            pytest.skip("store does not implement Repairable")
        ids = [self.put(store, p, queue=Q).id for p in (b"a", b"b")]
        leased = self.lease_one(store, queue=Q)
        before = self.snapshot(store, Q)
        assert store.repair() == []
        assert self.snapshot(store, Q) == before
        assert store.ack(Q, leased.id, lease_token=leased.lease_token)
        assert [m.id for m in store.lease(Q, lease_timeout=LONG, limit=10)] == ids[1:]
