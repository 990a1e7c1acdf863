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

from localqueue.testing._base import FakeClock, StoreSuiteBase, Timeline
from localqueue.testing.attempt_store import (
    AttemptRecordSuite,
    AttemptStoreBadInputSuite,
    AttemptStoreSharingSuite,
)
from localqueue.testing.model import ModelSuite
from localqueue.testing.processes import MultiProcessSuite
from localqueue.testing.queue_store import (
    AckSuite,
    BadInputSuite,
    BatchSuite,
    DeadLetterSuite,
    DecodeSuite,
    DedupSuite,
    DelaySuite,
    HandlesSuite,
    IntegritySuite,
    LeaseExpirySuite,
    LeaseSuite,
    OrderingSuite,
    PeekInspectSuite,
    PersistenceSuite,
    PurgeSuite,
    QueueValueSuite,
    ReleaseExtendSuite,
    StatsSuite,
    WaitSuite,
)

__all__ = [
    "AckSuite",
    "AttemptRecordSuite",
    "AttemptStoreBadInputSuite",
    "AttemptStoreSharingSuite",
    "AttemptStoreSuite",
    "BadInputSuite",
    "BatchSuite",
    "DeadLetterSuite",
    "DecodeSuite",
    "DedupSuite",
    "DelaySuite",
    "FakeClock",
    "HandlesSuite",
    "IntegritySuite",
    "LeaseExpirySuite",
    "LeaseSuite",
    "ModelSuite",
    "MultiProcessSuite",
    "OrderingSuite",
    "PeekInspectSuite",
    "PersistenceSuite",
    "PurgeSuite",
    "QueueStoreSuite",
    "QueueValueSuite",
    "ReleaseExtendSuite",
    "StatsSuite",
    "StoreSuiteBase",
    "Timeline",
    "WaitSuite",
]


class QueueStoreSuite(
    LeaseSuite,
    OrderingSuite,
    DelaySuite,
    LeaseExpirySuite,
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
    IntegritySuite,
    MultiProcessSuite,
    ModelSuite,
):
    """Every queue-store behaviour (and the attempt-store process test) in one class."""


class AttemptStoreSuite(AttemptRecordSuite, AttemptStoreSharingSuite, AttemptStoreBadInputSuite):
    """Every attempt-store behaviour in one class."""
