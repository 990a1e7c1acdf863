"""Workers: the long-running :class:`Worker`, and decorators that process one message per call.

```python
from localqueue import PersistentQueue, PersistentWorkerConfig, Worker, persistent_worker

def send_email(job: dict[str, str]) -> None: ...

queue = PersistentQueue("emails", store="sqlite:///jobs.db")
queue.put({"to": "user@example.com"})

@persistent_worker(queue, config=PersistentWorkerConfig(max_tries=5))
def send_email_job(job: dict[str, str]) -> None: ...

send_email_job()  # leases one message and processes it

Worker(queue, send_email, config=PersistentWorkerConfig(max_tries=5), concurrency=4).run(
    until_empty=True
)
```

Every worker processes each message by the same rules, through one delivery
pipeline built when the worker is (not per message):

* The handler receives ``message.value`` (then any extra arguments of the call).
* The retry key is the message id; attempts persist in the configured
  :class:`~localqueue.protocols.AttemptStore`.
* A message leased for the first time (``attempts == 1``: new, or requeued
  from dead letters, which resets ``attempts``) starts with a fresh retry
  budget; a redelivery after a crash continues the persisted one.
* Success acks the message. A final failure (the retryer gave up, or raised
  an error its ``retry`` predicate does not retry) dead-letters it, or with
  ``dead_letter_on_failure=False`` releases it after ``release_delay``; the
  error is recorded as ``last_error`` with ``failed_at``.
* A message whose payload cannot be decoded is dead-lettered with the error.
* While the handler runs, a heartbeat thread extends the lease.
* A store error about one message (settling it, or reading or writing its
  retry record) skips it: it is logged with the message id and the error's
  type, reported as ``skipped`` and left leased, so its lease expires and it
  is delivered again. Only errors that mean the store cannot serve again (it
  is closed, of a newer schema, or misconfigured) are raised.

The long-running :class:`Worker` adds:

* **concurrency**: ``concurrency`` threads for a sync handler, or as many
  asyncio tasks for a coroutine handler;
* **batching** (threads): messages are leased in batches sized to about
  50 ms of handler work (one at a time for slow handlers), and successes are
  acked in batches; a buffered message whose lease has run a third short is
  renewed before it starts, or skipped if another consumer has taken it;
* **heartbeats** that extend a message's lease while its handler runs;
* **graceful shutdown**: SIGINT or SIGTERM (or :meth:`Worker.stop`) lets the
  in-flight messages finish and be acked; a message waiting between retries is
  released at once. Nothing stays leased. A second signal is handled by the
  previous handler (a second Ctrl-C interrupts at once);
* **resilience**: a store that fails (locked, connection lost, disk full) is
  retried with capped, jittered exponential back-off (:func:`backoff_delay`),
  logged once per outage; a store error about one message skips that message
  (see above). :meth:`Worker.run` ends only when stopped,
  drained (``until_empty``), at ``max_messages``, or on an error no wait can
  mend: a closed store, a newer schema, a configuration error, or an error
  that is not a localqueue error at all;
* **logging** through the ``localqueue.worker`` (each message) and
  ``localqueue.runner`` (the run: start, stop, signals, store outages) loggers,
  with ``queue``, ``message_id``, ``worker_id`` and ``status`` as record extras.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import random
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Concatenate, ParamSpec, TypeVar

from localqueue._delivery import (
    Delivery,
    MessageOutcome,
    OutcomeStatus,
    PersistentWorkerConfig,
    ShutdownRequested,
    ack_outcome,
    configured,
    ends_run,
    is_transient,
)
from localqueue._models import QueueMessage
from localqueue.errors import LeaseLostError, LocalQueueError, StoreError, ValidationError
from localqueue.queue import PersistentQueue, format_error
from localqueue.validation import check_timeout, check_worker_id

__all__ = [
    "BACKOFF_CAP",
    "BACKOFF_FIRST",
    "MessageOutcome",
    "OutcomeStatus",
    "PersistentWorkerConfig",
    "Worker",
    "WorkerStats",
    "backoff_delay",
    "default_worker_id",
    "persistent_async_worker",
    "persistent_worker",
]

P = ParamSpec("P")
R = TypeVar("R")
_T = TypeVar("_T")

logger = logging.getLogger("localqueue.runner")

# Upper bound on one blocking wait for a message, so a stop request is seen promptly.
_WAIT_SLICE = 0.5
# Upper bound on one slice of an interruptible retry sleep.
_SLEEP_SLICE = 0.1
# A lease batch holds about this many seconds of handler work...
_PREFETCH_WINDOW = 0.05
# ... and at most this many messages; acks are flushed in batches of at most
_PREFETCH_MAX = 100
# ... this many, or once the oldest pending ack is this old.
_ACK_MAX_AGE = 0.02
# Pause before leasing again after a lease found fewer messages than it asked for.
_LINGER = 0.002
BACKOFF_FIRST = 0.05
"""Seconds of the first pause after a store failure (:attr:`Worker.backoff_first`)."""
BACKOFF_CAP = 5.0
"""The longest pause between tries of a failing store (:attr:`Worker.backoff_cap`)."""
# While an outage lasts, a warning is logged again this often (seconds).
_OUTAGE_REMINDER = 60.0


def backoff_delay(
    failures: int,
    *,
    first: float = BACKOFF_FIRST,
    cap: float = BACKOFF_CAP,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to pause after the ``failures``-th consecutive store failure (from 1).

    Exponential (``first``, doubling) up to ``cap``, with equal jitter: a
    uniform pick between half that ceiling and all of it, so workers that
    failed together do not all come back at once, yet none spins.
    """
    ceiling = min(cap, first * 2.0 ** min(max(failures, 1) - 1, 64))
    return ceiling / 2 + rng() * ceiling / 2


def default_worker_id() -> str:
    """``host:pid``, the worker id used when none is given."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class WorkerStats:
    """Counts of what a :meth:`Worker.run` did."""

    acked: int = 0
    dead_lettered: int = 0
    released: int = 0
    lease_lost: int = 0
    skipped: int = 0
    """Messages left leased after a store error about them; delivered again once it expires."""
    outcomes: list[MessageOutcome] = field(default_factory=list, repr=False)
    """Every outcome, in completion order (kept only with ``keep_outcomes=True``)."""

    @property
    def processed(self) -> int:
        """Messages settled in any way."""
        return self.acked + self.dead_lettered + self.released + self.lease_lost + self.skipped


class _Outage:
    """The consecutive store failures of a run, shared by its consumers.

    It sets the back-off (one streak for the whole worker, so concurrent
    consumers do not each start over at the shortest pause) and logs the
    outage once as it starts, every ``_OUTAGE_REMINDER`` seconds while it
    lasts, and once as it ends.
    """

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self._lock = threading.Lock()
        self.failures = 0
        self._since = 0.0
        self._reminded = 0.0

    def failed(self, exc: BaseException, doing: str) -> float:
        """Count a failure; returns the seconds to pause before trying again."""
        worker = self._worker
        now = time.monotonic()
        with self._lock:
            self.failures += 1
            failures = self.failures
            if failures == 1:
                self._since = self._reminded = now
                logger.warning(
                    "store failed while %s (%s); retrying with back-off up to %g s",
                    doing,
                    format_error(exc),
                    worker.backoff_cap,
                    extra=self._extra(exc),
                )
            elif now - self._reminded >= _OUTAGE_REMINDER:
                self._reminded = now
                logger.warning(
                    "store still failing after %.0f s and %d failures (%s)",
                    now - self._since,
                    failures,
                    format_error(exc),
                    extra=self._extra(exc),
                )
        return backoff_delay(failures, first=worker.backoff_first, cap=worker.backoff_cap)

    def recovered(self) -> None:
        """A store call succeeded: the next failure starts a new streak at the shortest pause."""
        if not self.failures:  # the common case, without taking the lock
            return
        with self._lock:
            if self.failures:
                logger.info(
                    "store is back after %d failures in %.1f s",
                    self.failures,
                    time.monotonic() - self._since,
                    extra={"queue": self._worker.queue.name, "worker_id": self._worker.worker_id},
                )
                self.failures = 0

    def _extra(self, exc: BaseException) -> dict[str, Any]:
        return {
            "queue": self._worker.queue.name,
            "worker_id": self._worker.worker_id,
            "reason": type(exc).__name__,
        }


class Worker:
    """Consumes a queue with a handler until stopped or (optionally) until it is empty.

    Args:
        queue: The queue to consume.
        handler: Called with each ``message.value``; a coroutine function runs on asyncio.
        config: Retry and settlement options
            (see :class:`~localqueue.worker.PersistentWorkerConfig`).
        concurrency: Messages processed at once (threads, or asyncio tasks).
        worker_id: Recorded as ``leased_by``; default ``config.worker_id`` or
            :func:`default_worker_id`.
        poll_interval: Seconds between checks for a message with ``block=False``.
        handle_signals: Install SIGINT/SIGTERM handlers during :meth:`run`
            (only ever in the main thread).
        on_outcome: Called with each :class:`~localqueue.worker.MessageOutcome`, e.g. to
            print it: from a worker thread, the acking thread (acked outcomes are
            reported once their batch is acked) or the event loop.
        keep_outcomes: Keep every outcome in :attr:`WorkerStats.outcomes`.

    Attributes:
        backoff_first: First pause (seconds) after a store failure; doubles per failure.
        backoff_cap: Longest pause between tries while the store keeps failing.
    """

    backoff_first: float = BACKOFF_FIRST
    backoff_cap: float = BACKOFF_CAP

    def __init__(
        self,
        queue: PersistentQueue,
        handler: Callable[..., Any],
        *,
        config: PersistentWorkerConfig | None = None,
        concurrency: int = 1,
        worker_id: str | None = None,
        poll_interval: float = 1.0,
        handle_signals: bool = True,
        on_outcome: Callable[[MessageOutcome], None] | None = None,
        keep_outcomes: bool = False,
    ) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValidationError(f"concurrency must be an int >= 1, got {concurrency!r}")
        self.queue = queue
        self.handler = handler
        wid = check_worker_id(worker_id) or (config.worker_id if config else None)
        self.worker_id = wid or default_worker_id()
        self.config = configured(config, {"worker_id": self.worker_id})
        self.concurrency = concurrency
        self.poll_interval = check_timeout(poll_interval)
        self.handle_signals = handle_signals
        self.on_outcome = on_outcome
        self.keep_outcomes = keep_outcomes
        self.is_async = inspect.iscoroutinefunction(handler)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._acks_due = threading.Condition(self._lock)
        self._stats = WorkerStats()
        self._started = 0
        self._errors: list[BaseException] = []
        # Thread mode: leased messages not yet started, with the monotonic time
        # their lease ends; successes not yet acked; mean handler seconds.
        self._buffer: deque[tuple[QueueMessage, float]] = deque()
        self._pending: list[tuple[QueueMessage, MessageOutcome]] = []
        self._pending_since = 0.0
        self._handler_seconds: float | None = None
        # Per consumer thread: whether its last lease found fewer messages than asked.
        self._thread_state = threading.local()
        self._outage = _Outage(self)
        # Built once: the pipeline every message of every run goes through.
        self._delivery = Delivery(
            queue,
            handler,
            self.config,
            sleep=self._async_sleep if self.is_async else self._sleep,
            defer_ack=not self.is_async,  # threads batch their acks
        )

    def __repr__(self) -> str:
        return f"Worker({self.queue!r}, worker_id={self.worker_id!r})"

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called (or a signal received) during the current run."""
        return self._stopping.is_set()

    def stop(self) -> None:
        """Ask the run to finish: in-flight messages complete, no new ones are leased.

        Safe to call from any thread or a signal handler; returns at once.
        """
        self._stopping.set()

    # -- running ---------------------------------------------------------------

    def run(
        self, *, until_empty: bool = False, block: bool = True, max_messages: int | None = None
    ) -> WorkerStats:
        """Process messages until stopped; returns what was done.

        Args:
            until_empty: Return once no message is available (delayed and
                leased messages are not waited for).
            block: While the queue is empty, wait on the store for a new
                message; ``False`` checks every ``poll_interval`` seconds instead.
            max_messages: Return after leasing this many messages.

        The run ends only when :meth:`stop` is called (or a signal received),
        once ``until_empty`` finds nothing available, after ``max_messages``,
        or on an error raised below. A store that fails otherwise (locked,
        unreachable, a damaged record) is tried again with back-off for as
        long as it takes; a store error about one message skips that message.

        Raises:
            StoreClosedError: The store was closed.
            SchemaVersionError: The store was written by a newer release.
            ConfigurationError: A store or option is not usable.
            ValidationError: ``max_messages`` (or a lease option) is out of range.
            Exception: Any error that is not a localqueue error (a bug in a store
                or in localqueue) ends the run and is re-raised. Handler errors
                never do: they settle their message.
        """
        if max_messages is not None and (
            isinstance(max_messages, bool) or not isinstance(max_messages, int) or max_messages < 1
        ):
            raise ValidationError(f"max_messages must be an int >= 1, got {max_messages!r}")
        self._stopping.clear()
        self._stats = WorkerStats()
        self._started = 0
        self._errors = []
        self._buffer.clear()
        self._pending = []
        self._outage = _Outage(self)
        restore = self._install_signal_handlers()
        logger.info(
            "worker %s consuming %s (concurrency %d)",
            self.worker_id,
            self.queue.name,
            self.concurrency,
            extra={"queue": self.queue.name, "worker_id": self.worker_id},
        )
        try:
            if self.is_async:
                asyncio.run(self._run_tasks(until_empty, block, max_messages))
            else:
                self._run_threads(until_empty, block, max_messages)
        finally:
            restore()
        logger.info(
            "worker %s stopped after %d messages",
            self.worker_id,
            self._stats.processed,
            extra={"queue": self.queue.name, "worker_id": self.worker_id},
        )
        if self._errors:
            raise self._errors[0]
        return self._stats

    def _install_signal_handlers(self) -> Callable[[], None]:
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous: dict[int, Any] = {}

        def on_signal(signum: int, frame: FrameType | None) -> None:
            logger.info(
                "received %s: finishing in-flight messages",
                signal.Signals(signum).name,
                extra={"queue": self.queue.name, "worker_id": self.worker_id},
            )
            self.stop()
            # A second signal goes to the previous handler (e.g. Ctrl-C interrupts at once).
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def _claim_slot(self, max_messages: int | None) -> bool:
        return self._claim_slots(1, max_messages) == 1

    def _claim_slots(self, wanted: int, max_messages: int | None) -> int:
        with self._lock:
            granted = wanted
            if max_messages is not None:
                granted = max(0, min(wanted, max_messages - self._started))
            self._started += granted
            return granted

    def _unclaim_slot(self, count: int = 1) -> None:
        with self._lock:
            self._started -= count

    def _record(self, outcome: MessageOutcome) -> None:
        with self._lock:
            counts = self._stats
            setattr(counts, outcome.status, getattr(counts, outcome.status) + 1)
            if self.keep_outcomes:
                counts.outcomes.append(outcome)
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    def _fail(self, exc: BaseException) -> None:
        logger.exception(
            "worker %s stopping on an unexpected error",
            self.worker_id,
            extra={"queue": self.queue.name, "worker_id": self.worker_id},
        )
        with self._lock:
            self._errors.append(exc)
        self.stop()

    def _lease(self, wait: bool, n: int = 1) -> list[QueueMessage]:
        return self.queue.get_messages(
            n,
            block=wait,
            timeout=_WAIT_SLICE,
            leased_by=self.worker_id,
            lease_timeout=self.config.lease_timeout,
        )

    # -- threads, for sync handlers ----------------------------------------------

    def _sleep(self, seconds: float) -> None:
        """Tenacity's sleep between retries, cut short (releasing the message) on stop."""
        if self._stopping.wait(seconds):
            raise ShutdownRequested

    def _run_threads(self, until_empty: bool, block: bool, max_messages: int | None) -> None:
        threads = [
            # Daemon threads: if a second signal interrupts the main thread, the
            # process may exit without them (their leases then expire and redeliver).
            threading.Thread(
                target=self._consume,
                args=(until_empty, block, max_messages),
                name=f"localqueue-worker-{n}",
                daemon=True,
            )
            for n in range(self.concurrency)
        ]
        consumers_done = threading.Event()
        acker = threading.Thread(
            target=self._ack_loop, args=(consumers_done,), name="localqueue-acker", daemon=True
        )
        acker.start()
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                # Join in slices so the main thread keeps running signal handlers.
                while thread.is_alive():
                    thread.join(0.2)
        finally:
            consumers_done.set()
            with self._acks_due:
                self._acks_due.notify_all()
            while acker.is_alive():
                acker.join(0.2)

    def _ack_loop(self, consumers_done: threading.Event) -> None:
        """Flush pending acks at most ``_ACK_MAX_AGE`` after they were queued.

        Consumers flush full batches themselves; this catches the rest, e.g.
        the successes queued just before a handler that runs for minutes, whose
        leases would otherwise expire unacked.
        """
        try:
            while not consumers_done.is_set():
                with self._acks_due:
                    if not self._pending:
                        # Checked under the lock that run() notifies with, so the
                        # end of the consumers cannot slip in before this wait.
                        if not consumers_done.is_set():
                            self._acks_due.wait()
                        continue
                    delay = self._pending_since + _ACK_MAX_AGE - time.monotonic()
                    if delay > 0:
                        self._acks_due.wait(delay)
                        continue
                self._flush_acks()
        except BaseException as exc:
            self._fail(exc)

    def _consume(self, until_empty: bool, block: bool, max_messages: int | None) -> None:
        try:
            while True:
                message = self._next_message(until_empty, block, max_messages)
                if message is None:
                    break
                started = time.monotonic()
                outcome, error = self._delivery.process(message)
                self._observe(time.monotonic() - started)
                if outcome.status == "acked":
                    self._ack_later(message, outcome)
                else:
                    self._record(outcome)
                    self._pause_if_failing(outcome, error)
        except BaseException as exc:
            self._fail(exc)
        finally:
            try:
                self._flush_acks()
            except BaseException as exc:
                self._fail(exc)

    def _batch_size(self) -> int:
        seconds = self._handler_seconds
        if seconds is None:
            return 1  # no handler timed yet: it may be slow
        return max(1, min(_PREFETCH_MAX, int(_PREFETCH_WINDOW / max(seconds, 1e-6))))

    def _observe(self, seconds: float) -> None:
        with self._lock:
            mean = self._handler_seconds
            # A moving mean that follows a handler turning slow within a few messages.
            self._handler_seconds = seconds if mean is None else 0.7 * mean + 0.3 * seconds

    def _next_message(
        self, until_empty: bool, block: bool, max_messages: int | None
    ) -> QueueMessage | None:
        """The next message to process: buffered, or from a new lease batch.

        ``None`` once the run should end. Buffered messages are processed even
        while stopping (the batch is a few milliseconds of work), so none is
        handed back unstarted.
        """
        while True:
            with self._lock:
                entry = self._buffer.popleft() if self._buffer else None
            if entry is not None:
                message, lease_ends = entry
                lease = self.config.lease_timeout or self.queue.lease_timeout
                if lease_ends - time.monotonic() > lease * 2 / 3 or self._renew(
                    message, lease_ends
                ):
                    return message
                continue
            if self._stopping.is_set():
                return None
            if getattr(self._thread_state, "linger", False):
                self._thread_state.linger = False
                self._stopping.wait(_LINGER)
            wanted = self._claim_slots(self._batch_size(), max_messages)
            if wanted == 0:
                return None
            leased_at = time.monotonic()
            try:
                leased = self._lease(block and not until_empty, wanted)
            except StoreError as exc:
                self._unclaim_slot(wanted)
                if ends_run(exc):
                    raise
                self._stopping.wait(self._outage.failed(exc, "leasing"))
                continue
            except BaseException:
                self._unclaim_slot(wanted)
                raise
            self._outage.recovered()
            if len(leased) < wanted:
                self._unclaim_slot(wanted - len(leased))
                if leased and not until_empty:
                    # The queue is drained as fast as it fills: let a few messages
                    # gather before the next lease instead of paying a commit (and
                    # the producer a lock wait) per message.
                    self._thread_state.linger = True
            if not leased:
                # Idle: settle what is done before waiting (a busy queue leaves acks
                # to batch across leases, one commit for many).
                self._flush_acks()
                if until_empty:
                    return None
                if not block:
                    self._stopping.wait(self.poll_interval)
                continue
            lease_ends = leased_at + (self.config.lease_timeout or self.queue.lease_timeout)
            with self._lock:
                self._buffer.extend((m, lease_ends) for m in leased[1:])
            return leased[0]

    def _renew(self, message: QueueMessage, lease_ends: float) -> bool:
        """Extend the lease of a buffered message whose lease ran short; ``False`` if lost.

        Renewing, not releasing: a release would leave the lease counted in the
        message's ``attempts``, which the next worker takes for a spent try.
        """
        try:
            self.queue.extend_lease(message, self.config.lease_timeout or self.queue.lease_timeout)
        except LeaseLostError:
            self._unclaim_slot()  # another consumer holds (or settled) it now
            return False
        except LocalQueueError as exc:
            if ends_run(exc):
                raise
            if lease_ends > time.monotonic():
                # Still ours for now; the heartbeat extends it once the store is back.
                return True
            self._record(self._delivery.skipped(message, "renew its lease", exc))
            return False
        return True

    def _ack_later(self, message: QueueMessage, outcome: MessageOutcome) -> None:
        with self._lock:
            if not self._pending:
                self._pending_since = time.monotonic()
                self._acks_due.notify_all()
            self._pending.append((message, outcome))
            due = len(self._pending) >= _PREFETCH_MAX
        if due:
            self._flush_acks()

    def _flush_acks(self) -> None:
        """Ack the pending successes in one call, then report them.

        A transient store failure is retried (:meth:`_patiently`); a batch the
        store refuses for another reason (a damaged record among them) is
        acked one by one, and each message that still fails is skipped.
        """
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return
        messages = [message for message, _ in batch]
        try:
            acked = self._patiently(lambda: self.queue.ack_many(messages), "acking")
        except LocalQueueError as exc:
            if ends_run(exc) or len(batch) == 1 or is_transient(exc):
                self._skip_all(batch, "ack it", exc)
            else:
                for one in batch:
                    self._flush_one(one)
            return
        lost: set[str] = set()
        if acked != len(messages):
            # Some leases were lost (expired and taken by another worker, or
            # settled by an operator): those still stored are not ours to ack.
            store, name = self.queue.store, self.queue.name
            try:
                lost = self._patiently(
                    lambda: {m.id for m in messages if store.inspect(name, m.id) is not None},
                    "checking unacked messages",
                )
            except LocalQueueError as exc:
                self._skip_all(batch, "tell whether it was acked", exc)
                return
        for message, done in batch:
            lease_lost = message.id in lost
            self._record(ack_outcome(message, done.result, done.attempts, lost=lease_lost))

    def _flush_one(self, pending: tuple[QueueMessage, MessageOutcome]) -> None:
        message, done = pending
        outcome, _ = self._delivery.succeeded(message, done.result, done.attempts)
        self._record(outcome)

    def _skip_all(
        self, batch: list[tuple[QueueMessage, MessageOutcome]], doing: str, exc: LocalQueueError
    ) -> None:
        """Report every message of ``batch`` as skipped (or re-raise ``exc`` if it ends the run)."""
        for message, done in batch:
            self._record(self._delivery.skipped(message, doing, exc, done.attempts))

    def _patiently(self, call: Callable[[], _T], doing: str) -> _T:
        """``call()``, made again after transient store failures for up to one lease length.

        After that the lease has run out and the message is delivered again
        anyway. The pauses ignore :meth:`stop`: settling what is done is what a
        stopping worker still has to do.
        """
        deadline = time.monotonic() + (self.config.lease_timeout or self.queue.lease_timeout)
        while True:
            try:
                result = call()
            except StoreError as exc:
                remaining = deadline - time.monotonic()
                if not is_transient(exc) or remaining <= 0:
                    raise
                time.sleep(min(self._outage.failed(exc, doing), remaining))
                continue
            self._outage.recovered()
            return result

    def _pause_if_failing(self, outcome: MessageOutcome, error: BaseException | None) -> None:
        """After a message skipped for a transient store failure, pause as the back-off says.

        Without it a failing attempt store would have the worker lease (and skip)
        message after message as fast as the queue store hands them out.
        """
        if outcome.status == "skipped" and error is not None and is_transient(error):
            self._stopping.wait(self._outage.failed(error, "processing a message"))

    # -- tasks, for coroutine handlers ------------------------------------------

    async def _async_sleep(self, seconds: float) -> None:
        """Tenacity's sleep between retries, cut short (releasing the message) on stop."""
        await self._idle(seconds)
        if self._stopping.is_set():
            raise ShutdownRequested

    async def _run_tasks(self, until_empty: bool, block: bool, max_messages: int | None) -> None:
        loop = asyncio.get_running_loop()
        installed: list[int] = []
        if self.handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self._on_loop_signal, sig, installed)
                installed.append(sig)
        try:
            tasks = [
                asyncio.create_task(self._consume_async(until_empty, block, max_messages))
                for _ in range(self.concurrency)
            ]
            await asyncio.gather(*tasks)
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)

    def _on_loop_signal(self, signum: int, installed: list[int]) -> None:
        logger.info(
            "received %s: finishing in-flight messages",
            signal.Signals(signum).name,
            extra={"queue": self.queue.name, "worker_id": self.worker_id},
        )
        self.stop()
        loop = asyncio.get_running_loop()
        for sig in installed:
            loop.remove_signal_handler(sig)
        installed.clear()

    async def _consume_async(
        self, until_empty: bool, block: bool, max_messages: int | None
    ) -> None:
        try:
            while not self._stopping.is_set():
                if not self._claim_slot(max_messages):
                    return
                try:
                    # The blocking wait runs in a thread so the loop keeps serving other tasks.
                    leased = await asyncio.to_thread(self._lease, block and not until_empty)
                except StoreError as exc:
                    self._unclaim_slot()
                    if ends_run(exc):
                        raise
                    await self._idle(self._outage.failed(exc, "leasing"))
                    continue
                except BaseException:
                    self._unclaim_slot()
                    raise
                self._outage.recovered()
                if not leased:
                    self._unclaim_slot()
                    if until_empty:
                        return
                    if not block:
                        await self._idle(self.poll_interval)
                    continue
                outcome, error = await self._delivery.process_async(leased[0])
                self._record(outcome)
                if outcome.status == "skipped" and error is not None and is_transient(error):
                    await self._idle(self._outage.failed(error, "processing a message"))
        except Exception as exc:
            self._fail(exc)

    async def _idle(self, seconds: float) -> None:
        """Sleep ``seconds`` in slices, returning early once the worker is stopping."""
        deadline = time.monotonic() + seconds
        while not self._stopping.is_set() and (remaining := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(remaining, _SLEEP_SLICE))


# -- one message per call -------------------------------------------------------


def _lease_one(queue: PersistentQueue, config: PersistentWorkerConfig) -> QueueMessage:
    return queue.get_message(
        config.block,
        config.timeout,
        leased_by=config.worker_id,
        lease_timeout=config.lease_timeout,
    )


def persistent_worker(
    queue: PersistentQueue, config: PersistentWorkerConfig | None = None, **options: Any
) -> Callable[[Callable[Concatenate[Any, P], R]], Callable[P, R]]:
    """Turn a handler into a function that processes one message of ``queue`` per call.

    Each call leases one message, runs ``handler(message.value, *args, **kwargs)``
    under persistent retry keyed by the message id, acks it on success and
    dead-letters (or releases) it on final failure, then re-raises the failure.

    Args:
        queue: The queue to consume.
        config: Retry and settlement options.
        **options: Overrides of any :class:`PersistentWorkerConfig` field
            (``max_tries=5``, ``dead_letter_on_failure=False``, ...).

    Returns:
        A decorator. The decorated function returns the handler's result.

    Raises:
        Empty: (from the decorated function) No message was available.
        MessageDecodeError: (idem) The message could not be decoded; it was dead-lettered.
    """
    cfg = configured(config, options)

    def decorate(handler: Callable[Concatenate[Any, P], R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(handler):
            raise TypeError(f"{handler.__qualname__} is async; use persistent_async_worker")
        delivery = Delivery(queue, handler, cfg)  # once per decorated function

        @functools.wraps(handler)
        def process_one(*args: P.args, **kwargs: P.kwargs) -> R:
            message = _lease_one(queue, cfg)
            outcome, error = delivery.process(message, args, kwargs)
            if error is not None:
                raise error
            result: R = outcome.result
            return result

        return process_one

    return decorate


def persistent_async_worker(
    queue: PersistentQueue, config: PersistentWorkerConfig | None = None, **options: Any
) -> Callable[[Callable[Concatenate[Any, P], Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """The async twin of :func:`persistent_worker`, for coroutine handlers.

    Leasing and settling call the store directly; with ``block=True`` the wait
    for a message runs in a thread so the event loop keeps running.
    """
    cfg = configured(config, options)

    def decorate(
        handler: Callable[Concatenate[Any, P], Awaitable[R]],
    ) -> Callable[P, Awaitable[R]]:
        delivery = Delivery(queue, handler, cfg)  # once per decorated function

        @functools.wraps(handler)
        async def process_one(*args: P.args, **kwargs: P.kwargs) -> R:
            if cfg.block:
                message = await asyncio.to_thread(_lease_one, queue, cfg)
            else:
                message = _lease_one(queue, cfg)
            outcome, error = await delivery.process_async(message, args, kwargs)
            if error is not None:
                raise error
            result: R = outcome.result
            return result

        return process_one

    return decorate
