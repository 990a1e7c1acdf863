"""The bundles: every suite class of one store kind in one class to subclass.

Add a new behaviour class to the matching bundle here (and export it from
``localqueue.testing``'s ``_EXPORTS`` table).
"""

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
from localqueue.testing.text import AttemptTextSuite, TextSuite

__all__ = ["AttemptStoreSuite", "QueueStoreSuite"]


class QueueStoreSuite(
    LeaseSuite,
    OrderingSuite,
    DelaySuite,
    LeaseExpirySuite,
    MaxDeliveriesSuite,
    AckSuite,
    ReleaseExtendSuite,
    DeadLetterSuite,
    PurgeSuite,
    PeekInspectSuite,
    StatsSuite,
    DedupSuite,
    BatchSuite,
    BadInputSuite,
    HandlesSuite,
    PersistenceSuite,
    WaitSuite,
    DecodeSuite,
    QueueValueSuite,
    RecordFieldsSuite,
    IntegritySuite,
    MultiProcessSuite,
    ModelSuite,
    ConcurrentLeaseSuite,
    WaitBlocksSuite,
    WaitWakesSuite,
    TimestampSuite,
    IsolationSuite,
    MessageStateSuite,
    DistinctNamesSuite,
    ClosedStoreSuite,
    CapacitySuite,
    DamageSuite,
    TextSuite,
    LimitsSuite,
    FaultHookSuite,
    EngineErrorSuite,
    LockTimeoutSuite,
):
    """Every queue-store behaviour (and the attempt-store process test) in one class."""


class AttemptStoreSuite(
    AttemptRecordSuite,
    AttemptStoreSharingSuite,
    AttemptStoreBadInputSuite,
    AttemptTimestampSuite,
    AttemptKeysSuite,
    AttemptStoreClosedSuite,
    AttemptStoreLimitsSuite,
    AttemptTextSuite,
    AttemptEngineErrorSuite,
    AttemptLockTimeoutSuite,
):
    """Every attempt-store behaviour in one class."""
