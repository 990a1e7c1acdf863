"""The conformance suite every store must pass, shipped for third-party backends too.

Subclass the bundles in a test module of your own and give them the URL of
the store under test::

    import pytest
    from localqueue.testing import AttemptStoreSuite, QueueStoreSuite

    class TestMyQueueStore(QueueStoreSuite):
        @pytest.fixture
        def store_url(self, tmp_path):
            return f"mydb:///{tmp_path}/db"

    class TestMyAttemptStore(AttemptStoreSuite):
        @pytest.fixture
        def store_url(self, tmp_path):
            return f"mydb:///{tmp_path}/db"

Or run the bundles against any URL without writing a file::

    pytest --pyargs localqueue.testing.test_url --localqueue-url "sqlite:////tmp/q.db"

Classes are plain (no ``Test`` prefix), so pytest collects only your
subclasses. Each behaviour also has its own class (``LeaseSuite``,
``DeadLetterSuite``, ...) for picking. Tests of optional capabilities skip
when the store does not declare them; time-based tests use a
:class:`FakeClock` when the store accepts one and short real sleeps
otherwise. Fixtures to override: ``store_url`` always; ``make_queue_store`` /
``make_attempt_store`` when handles cannot be opened from a URL.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from localqueue._install import extra_hint

if TYPE_CHECKING:  # the names as the type checker sees them; the runtime resolves them lazily
    from localqueue.testing._base import FakeClock, StoreSuiteBase, Timeline
    from localqueue.testing.attempt_store import (
        AttemptKeysSuite,
        AttemptRecordSuite,
        AttemptStoreBadInputSuite,
        AttemptStoreClosedSuite,
        AttemptStoreSharingSuite,
        AttemptTimestampSuite,
    )
    from localqueue.testing.capacity import CapacitySuite
    from localqueue.testing.damage import DamageSuite
    from localqueue.testing.deliveries import MaxDeliveriesSuite
    from localqueue.testing.faults import (
        AttemptEngineErrorSuite,
        AttemptLockTimeoutSuite,
        EngineErrorSuite,
        FaultHookSuite,
        LockTimeoutSuite,
    )
    from localqueue.testing.limits import AttemptStoreLimitsSuite, LimitsSuite
    from localqueue.testing.model import ModelSuite
    from localqueue.testing.processes import MultiProcessSuite
    from localqueue.testing.queue_store import (
        AckSuite,
        BadInputSuite,
        BatchSuite,
        ClosedStoreSuite,
        ConcurrentLeaseSuite,
        DeadLetterSuite,
        DecodeSuite,
        DedupSuite,
        DelaySuite,
        DistinctNamesSuite,
        HandlesSuite,
        IntegritySuite,
        IsolationSuite,
        LeaseExpirySuite,
        LeaseLog,
        LeaseSuite,
        MessageStateSuite,
        OrderingSuite,
        PeekInspectSuite,
        PersistenceSuite,
        PurgeSuite,
        QueueValueSuite,
        RecordFieldsSuite,
        ReleaseExtendSuite,
        StatsSuite,
        TimestampSuite,
        WaitBlocksSuite,
        WaitSuite,
        WaitWakesSuite,
    )
    from localqueue.testing.suites import AttemptStoreSuite, QueueStoreSuite
    from localqueue.testing.text import AttemptTextSuite, TextSuite

# name -> submodule defining it. Resolved on first use, so importing this package
# (as the pytest plugin does) needs neither pytest's fixtures nor Hypothesis.
_EXPORTS: dict[str, str] = {
    "AckSuite": "queue_store",
    "AttemptEngineErrorSuite": "faults",
    "AttemptKeysSuite": "attempt_store",
    "AttemptLockTimeoutSuite": "faults",
    "AttemptRecordSuite": "attempt_store",
    "AttemptStoreBadInputSuite": "attempt_store",
    "AttemptStoreClosedSuite": "attempt_store",
    "AttemptStoreLimitsSuite": "limits",
    "AttemptStoreSharingSuite": "attempt_store",
    "AttemptStoreSuite": "suites",
    "AttemptTextSuite": "text",
    "AttemptTimestampSuite": "attempt_store",
    "BadInputSuite": "queue_store",
    "BatchSuite": "queue_store",
    "CapacitySuite": "capacity",
    "ClosedStoreSuite": "queue_store",
    "ConcurrentLeaseSuite": "queue_store",
    "DamageSuite": "damage",
    "DeadLetterSuite": "queue_store",
    "DecodeSuite": "queue_store",
    "DedupSuite": "queue_store",
    "DelaySuite": "queue_store",
    "DistinctNamesSuite": "queue_store",
    "EngineErrorSuite": "faults",
    "FakeClock": "_base",
    "FaultHookSuite": "faults",
    "HandlesSuite": "queue_store",
    "IntegritySuite": "queue_store",
    "IsolationSuite": "queue_store",
    "LeaseExpirySuite": "queue_store",
    "LeaseLog": "queue_store",
    "LeaseSuite": "queue_store",
    "LimitsSuite": "limits",
    "MaxDeliveriesSuite": "deliveries",
    "LockTimeoutSuite": "faults",
    "MessageStateSuite": "queue_store",
    "ModelSuite": "model",
    "MultiProcessSuite": "processes",
    "OrderingSuite": "queue_store",
    "PeekInspectSuite": "queue_store",
    "PersistenceSuite": "queue_store",
    "PurgeSuite": "queue_store",
    "QueueStoreSuite": "suites",
    "QueueValueSuite": "queue_store",
    "RecordFieldsSuite": "queue_store",
    "ReleaseExtendSuite": "queue_store",
    "StatsSuite": "queue_store",
    "StoreSuiteBase": "_base",
    "TextSuite": "text",
    "Timeline": "_base",
    "TimestampSuite": "queue_store",
    "WaitBlocksSuite": "queue_store",
    "WaitSuite": "queue_store",
    "WaitWakesSuite": "queue_store",
}

__all__ = [
    "AckSuite",
    "AttemptEngineErrorSuite",
    "AttemptKeysSuite",
    "AttemptLockTimeoutSuite",
    "AttemptRecordSuite",
    "AttemptStoreBadInputSuite",
    "AttemptStoreClosedSuite",
    "AttemptStoreLimitsSuite",
    "AttemptStoreSharingSuite",
    "AttemptStoreSuite",
    "AttemptTextSuite",
    "AttemptTimestampSuite",
    "BadInputSuite",
    "BatchSuite",
    "CapacitySuite",
    "ClosedStoreSuite",
    "ConcurrentLeaseSuite",
    "DamageSuite",
    "DeadLetterSuite",
    "DecodeSuite",
    "DedupSuite",
    "DelaySuite",
    "DistinctNamesSuite",
    "EngineErrorSuite",
    "FakeClock",
    "FaultHookSuite",
    "HandlesSuite",
    "IntegritySuite",
    "IsolationSuite",
    "LeaseExpirySuite",
    "LeaseLog",
    "LeaseSuite",
    "LimitsSuite",
    "LockTimeoutSuite",
    "MaxDeliveriesSuite",
    "MessageStateSuite",
    "ModelSuite",
    "MultiProcessSuite",
    "OrderingSuite",
    "PeekInspectSuite",
    "PersistenceSuite",
    "PurgeSuite",
    "QueueStoreSuite",
    "QueueValueSuite",
    "RecordFieldsSuite",
    "ReleaseExtendSuite",
    "StatsSuite",
    "StoreSuiteBase",
    "TextSuite",
    "Timeline",
    "TimestampSuite",
    "WaitBlocksSuite",
    "WaitSuite",
    "WaitWakesSuite",
]
"""Every name of ``_EXPORTS``, sorted (tests check the two agree)."""

# Libraries the suite needs that are not dependencies of localqueue itself.
_TESTING_EXTRA = ("hypothesis", "pytest")


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = importlib.import_module(f"{__name__}.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.partition(".")[0] not in _TESTING_EXTRA:
            raise
        raise ModuleNotFoundError(
            f"localqueue.testing.{name} needs {exc.name!r}, which is not installed: "
            f"install the conformance suite's extra with {extra_hint('testing')}",
            name=exc.name,
        ) from None  # one error, naming the fix, not two tracebacks
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
