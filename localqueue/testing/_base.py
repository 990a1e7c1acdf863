"""Fixtures every suite class shares: the URL, the clock, store handles and time."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from localqueue._models import Capability
from localqueue.protocols import AttemptStore, NamespacedBackend, QueueStore
from localqueue.registry import get_backend, open_attempt_store, open_queue_store
from localqueue.urls import StoreURL

CODEC = "msgpack"
"""The codec name the suite stores raw payloads under: stores move bytes and keep
the name, so any registered name would do; values the suite decodes are msgpack."""

__all__ = ["FakeClock", "StoreSuiteBase", "Timeline"]


class FakeClock:
    """A clock that only moves when told to; starts at the real time of its creation.

    Pass it as ``clock=`` to stores declaring ``Capability.INJECTABLE_CLOCK``.
    """

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        with self._lock:
            self._now += seconds


class Timeline:
    """Moves time forward for a test: the fake clock when there is one, else real sleeps.

    With a real clock, "not yet" checks are only meaningful while less real time
    has passed than the interval being tested; :meth:`still_before` tells the
    test whether that holds, so slow machines never produce false failures.
    """

    def __init__(self, clock: FakeClock | None, unit: float) -> None:
        self.clock = clock
        self.unit = unit
        """Seconds one test 'tick' stands for: 1.0 with a fake clock, more with a real one."""
        self._start = time.monotonic()
        self._advanced = 0.0

    @property
    def fake(self) -> bool:
        """Whether time is controlled exactly."""
        return self.clock is not None

    def advance(self, ticks: float) -> None:
        """Let ``ticks`` units of time pass."""
        seconds = ticks * self.unit
        self._advanced += seconds
        if self.clock is not None:
            self.clock.advance(seconds)
        else:
            time.sleep(seconds)

    def mark(self) -> None:
        """Start measuring elapsed time for :meth:`still_before` from now."""
        self._start = time.monotonic()
        self._advanced = 0.0

    def still_before(self, ticks: float) -> bool:
        """Whether less than ``ticks`` units have passed since :meth:`mark`."""
        if self.clock is not None:
            return self._advanced < ticks * self.unit
        return time.monotonic() - self._start < ticks * self.unit


class StoreSuiteBase:
    """Fixtures of every conformance class. Override ``store_url`` (or pass ``--localqueue-url``).

    A subclass that does neither fails every test, naming ``store_url``.

    ``make_queue_store`` / ``make_attempt_store`` open a new handle on the same
    store at each call, standing in for separate processes; override them when
    handles cannot be opened from the URL alone (as the memory store does).
    """

    #: Seconds one tick of time stands for when the store's clock cannot be injected.
    real_time_unit: float = 0.5

    @pytest.fixture
    def store_url(self, request: pytest.FixtureRequest) -> Iterator[str]:
        """The URL of the store under test: override it, or pass ``--localqueue-url``.

        With ``--localqueue-url``, each test runs in its own namespace of the
        URL (see :class:`~localqueue.protocols.NamespacedBackend`), dropped
        after the test; a store that is not persistent needs none, since every
        open of its URL is a new store.
        """
        given = request.config.getoption("--localqueue-url", default=None)
        if not given:
            pytest.fail(
                f"{type(self).__name__} defines no `store_url` fixture: override `store_url` "
                "(returning the URL of a fresh store) or pass --localqueue-url URL",
                pytrace=False,
            )
        url = StoreURL.parse(str(given))
        backend = get_backend(url.scheme)
        if isinstance(backend, NamespacedBackend):
            private = backend.namespace(url, uuid.uuid4().hex[:12])
            try:
                yield private.to_string()
            finally:
                backend.drop_namespace(private)
            return
        if Capability.PERSISTENT in getattr(backend, "capabilities", frozenset()):
            pytest.fail(
                f"--localqueue-url {url.redacted()}: the {url.scheme!r} backend is persistent "
                "but has no namespace()/drop_namespace() hook "
                "(localqueue.protocols.NamespacedBackend), so the tests would share one "
                "store; implement the hook, or subclass the suites with a `store_url` fixture",
                pytrace=False,
            )
        yield str(given)

    @pytest.fixture
    def shares_handles(self, store_url: str, request: pytest.FixtureRequest) -> bool:
        """Whether ``make_*_store`` must hand out one instance (``--localqueue-url`` only).

        Without ``PERSISTENT`` a URL opens a new store each time (``memory://``),
        so the handles of one test are one instance.
        """
        if not request.config.getoption("--localqueue-url", default=None):
            return False
        backend = get_backend(StoreURL.parse(store_url).scheme)
        return Capability.PERSISTENT not in getattr(backend, "capabilities", frozenset())

    @pytest.fixture
    def capabilities(self, store_url: str) -> frozenset[Capability]:
        """The capabilities the store's backend declares."""
        backend = get_backend(StoreURL.parse(store_url).scheme)
        return frozenset(getattr(backend, "capabilities", frozenset()))

    @pytest.fixture
    def clock(self, capabilities: frozenset[Capability]) -> FakeClock | None:
        """A fake clock when the store can take one, else ``None`` (real time)."""
        return FakeClock() if Capability.INJECTABLE_CLOCK in capabilities else None

    @pytest.fixture
    def timeline(self, clock: FakeClock | None) -> Timeline:
        """Moves time forward for the test."""
        return Timeline(clock, 1.0 if clock is not None else self.real_time_unit)

    @pytest.fixture
    def make_queue_store(
        self, store_url: str, clock: FakeClock | None, shares_handles: bool
    ) -> Iterator[Callable[[], QueueStore]]:
        """Opens a new queue-store handle on the store under test; closes all at teardown."""
        handles: list[QueueStore] = []

        def make() -> QueueStore:
            if shares_handles and handles:
                return handles[0]
            handle = open_queue_store(store_url, clock=clock)
            handles.append(handle)
            return handle

        yield make
        for handle in handles:
            handle.close()

    @pytest.fixture
    def make_attempt_store(
        self, store_url: str, clock: FakeClock | None, shares_handles: bool
    ) -> Iterator[Callable[[], AttemptStore]]:
        """Opens a new attempt-store handle on the store under test; closes all at teardown."""
        handles: list[AttemptStore] = []

        def make() -> AttemptStore:
            if shares_handles and handles:
                return handles[0]
            handle = open_attempt_store(store_url, clock=clock)
            handles.append(handle)
            return handle

        yield make
        for handle in handles:
            handle.close()

    @staticmethod
    def require(capabilities: frozenset[Capability], capability: Capability) -> None:
        """Skip the test unless the store declares ``capability``."""
        if capability not in capabilities:
            pytest.skip(f"store does not declare {capability.value}")
