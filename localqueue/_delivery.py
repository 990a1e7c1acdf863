"""The delivery pipeline every worker shares: run a handler under persistent retry, settle.

:mod:`localqueue.worker` builds one :class:`Delivery` per worker (the
long-running :class:`~localqueue.worker.Worker`, or a function decorated with
:func:`~localqueue.worker.persistent_worker` or
:func:`~localqueue.worker.persistent_async_worker`), and re-exports this
module's public names; the rules a delivery follows are listed there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import tenacity

from localqueue._models import QueueMessage, RetryRecord
from localqueue.errors import (
    ConfigurationError,
    LeaseLostError,
    LocalQueueError,
    MessageDecodeError,
    SchemaVersionError,
    StoreClosedError,
    StoreCorruptedError,
    StoreError,
    ValidationError,
)
from localqueue.protocols import AttemptStore
from localqueue.queue import PersistentQueue, format_error
from localqueue.registry import open_attempt_store
from localqueue.retry import PersistentAsyncRetrying, PersistentRetrying, get_default_store
from localqueue.validation import check_delay, check_lease_timeout, check_worker_id

logger = logging.getLogger("localqueue.worker")


OutcomeStatus = Literal["acked", "dead_lettered", "released", "lease_lost", "skipped"]
"""How a processed message was settled (``skipped``: the store failed, the message was
left leased and is delivered again once its lease expires)."""


def ends_run(exc: BaseException) -> bool:
    """Whether a store error means the store cannot serve this worker again.

    A closed store, a schema from a newer release and a configuration error
    stay that way however long a worker waits, so they end a run; every other
    store error is about one message, or an engine that may recover.
    """
    return isinstance(exc, StoreClosedError | SchemaVersionError | ConfigurationError)


def is_transient(exc: BaseException) -> bool:
    """Whether the same store call may succeed if simply made again.

    Lock timeouts, lost connections, a full disk: any :class:`StoreError` but a
    damaged record (:class:`StoreCorruptedError`) and those that end a run.
    """
    return (
        isinstance(exc, StoreError)
        and not ends_run(exc)
        and not isinstance(exc, StoreCorruptedError)
    )


@dataclass(frozen=True, kw_only=True)
class PersistentWorkerConfig:
    """How a worker retries a handler and settles its messages.

    Retry options (passed to :class:`~localqueue.retry.PersistentRetrying`):

    Attributes:
        store: Attempt store or URL for retry state (default: the retry layer's default).
        store_path: A SQLite file for retry state; shorthand for ``store=path``.
        max_tries: Shorthand for ``stop=stop_after_attempt(max_tries)``.
        stop: Tenacity stop strategy.
        wait: Tenacity wait strategy (the handler is retried within one lease).
        retry: Tenacity retry predicate; errors it does not retry fail at once.
        before: Tenacity ``before`` callback.
        after: Tenacity ``after`` callback.
        before_sleep: Tenacity ``before_sleep`` callback.
        retry_error_callback: Tenacity callback when the budget is spent; if it
            returns instead of raising, the message counts as handled and is acked.
        reraise: Raise the handler's own error instead of ``tenacity.RetryError``.
        sleep: Tenacity sleep function (inject one in tests).
        dead_letter_on_failure: Dead-letter a message on final failure; ``False``
            releases it after ``release_delay`` instead.
        release_delay: Seconds before a released message is delivered again.
        lease_timeout: Lease length in seconds (default: the queue's).
        heartbeat_interval: Seconds between lease extensions while the handler
            runs (default: a third of the lease); ``0`` turns the heartbeat off.
        worker_id: Recorded on leased messages as ``leased_by``.
        block: Wait for a message when the queue is empty (single-call decorators).
        timeout: With ``block``, most seconds to wait before raising ``Empty``.
    """

    store: AttemptStore | str | os.PathLike[str] | None = None
    store_path: str | os.PathLike[str] | None = None
    max_tries: int | None = None
    stop: Any = None
    wait: Any = None
    retry: Any = None
    before: Any = None
    after: Any = None
    before_sleep: Any = None
    retry_error_callback: Any = None
    reraise: bool = True
    sleep: Any = None
    dead_letter_on_failure: bool = True
    release_delay: float = 0.0
    lease_timeout: float | None = None
    heartbeat_interval: float | None = None
    worker_id: str | None = None
    block: bool = False
    timeout: float | None = None

    def __post_init__(self) -> None:
        check_delay(self.release_delay)
        if self.lease_timeout is not None:
            check_lease_timeout(self.lease_timeout)
        if self.heartbeat_interval is not None and self.heartbeat_interval != 0:
            check_lease_timeout(self.heartbeat_interval)
        check_worker_id(self.worker_id)
        if self.max_tries is not None and self.stop is not None:
            raise ValidationError("pass either max_tries or stop, not both")

    def replace(self, **changes: Any) -> PersistentWorkerConfig:
        """A copy with some fields changed.

        Raises:
            TypeError: A name is not a field of the config.
        """
        return dataclasses.replace(self, **changes)

    def retry_options(self) -> dict[str, Any]:
        """The options given to the retryer (only those that are set)."""
        names = (
            "store",
            "store_path",
            "max_tries",
            "stop",
            "wait",
            "retry",
            "before",
            "after",
            "before_sleep",
            "retry_error_callback",
            "sleep",
        )
        options = {name: getattr(self, name) for name in names if getattr(self, name) is not None}
        options["reraise"] = self.reraise
        return options


@dataclass(frozen=True)
class MessageOutcome:
    """What happened to one processed message."""

    message_id: str
    """The message's id (also its retry key)."""
    status: OutcomeStatus
    """How the message was settled."""
    attempts: int
    """Handler attempts recorded for the message, across restarts (0 if none ran)."""
    error: str | None = None
    """The failure recorded as ``last_error``, if any."""
    result: Any = dataclasses.field(default=None, repr=False)
    """What the handler returned, when it succeeded."""


def configured(
    config: PersistentWorkerConfig | None, options: dict[str, Any] | None = None
) -> PersistentWorkerConfig:
    """The config with ``options`` applied and its retry store opened once.

    A store given as a URL or path is opened here, once, and shared by every
    message (it stays open for the life of the process).
    """
    cfg = config or PersistentWorkerConfig()
    if options:
        cfg = cfg.replace(**options)
    target = cfg.store if cfg.store_path is None else cfg.store_path
    if isinstance(target, str | os.PathLike):
        cfg = cfg.replace(store=open_attempt_store(target), store_path=None)
    return cfg


class ShutdownRequested(Exception):
    """Raised by a worker's sleep when it is stopping: the message is released untouched."""


class _LeaseKeeper:
    """Extends the leases of running handlers from one background thread per process.

    A thread per message would cost more than a fast handler itself; one keeper
    sleeps until the earliest extension is due. ``drop`` waits for an extension
    of that message that is under way, so a heartbeat never races the ack.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._entries: dict[int, list[Any]] = {}  # key -> [due, queue, message, lease, every]
        self._keys = itertools.count()
        self._busy: int | None = None
        self._thread: threading.Thread | None = None
        # When the keeper thread will next wake by itself: a hold due later
        # need not wake it (one notify per message costs a thread switch).
        self._wake_at = 0.0

    def hold(
        self, queue: PersistentQueue, message: QueueMessage, lease: float, every: float
    ) -> int:
        """Start extending ``message``'s lease every ``every`` seconds; returns a handle."""
        with self._cond:
            key = next(self._keys)
            due = time.monotonic() + every
            self._entries[key] = [due, queue, message, lease, every]
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="localqueue-lease-keeper", daemon=True
                )
                self._thread.start()
            if due < self._wake_at:
                self._cond.notify_all()
            return key

    def drop(self, key: int) -> None:
        """Stop extending; returns once no extension of it is under way."""
        with self._cond:
            self._entries.pop(key, None)
            while self._busy == key:
                self._cond.wait()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if not self._entries:
                        self._wake_at = float("inf")
                        self._cond.wait()
                        continue
                    key, entry = min(self._entries.items(), key=lambda item: item[1][0])
                    delay = entry[0] - time.monotonic()
                    if delay <= 0:
                        break
                    self._wake_at = entry[0]
                    self._cond.wait(delay)
                self._wake_at = 0.0
                self._busy = key
                entry[0] = time.monotonic() + entry[4]
            keep = False
            try:
                keep = self._extend(entry[1], entry[2], entry[3])
            finally:
                # Even if the extension escaped with an error, ``drop`` must not wait forever.
                with self._cond:
                    self._busy = None
                    if not keep:
                        self._entries.pop(key, None)
                    self._cond.notify_all()

    @staticmethod
    def _extend(queue: PersistentQueue, message: QueueMessage, lease: float) -> bool:
        try:
            queue.extend_lease(message, lease)
        except LeaseLostError:
            logger.warning(
                "lease of message %s lost; heartbeat stopped",
                message.id,
                extra={"queue": queue.name, "message_id": message.id},
            )
            return False
        except StoreClosedError:
            return False
        except LocalQueueError as exc:  # a locked store: try again at the next beat
            logger.warning("heartbeat for message %s failed: %s", message.id, exc)
        except Exception:
            # An engine error the store did not translate: stop this message's
            # heartbeat (its lease may then expire) but keep the thread for the others.
            logger.exception(
                "heartbeat for message %s failed; heartbeat stopped",
                message.id,
                extra={"queue": queue.name, "message_id": message.id},
            )
            return False
        return True


_keeper = _LeaseKeeper()


def _reset_keeper_after_fork() -> None:
    global _keeper
    _keeper = _LeaseKeeper()


os.register_at_fork(after_in_child=_reset_keeper_after_fork)


def _underlying(exc: BaseException) -> BaseException:
    if isinstance(exc, tenacity.RetryError) and exc.last_attempt.failed:
        inner = exc.last_attempt.exception()
        if inner is not None:
            return inner
    return exc


def _log_extra(message: QueueMessage, **more: Any) -> dict[str, Any]:
    return {"queue": message.queue, "message_id": message.id, **more}


def ack_outcome(message: QueueMessage, result: Any, attempts: int, *, lost: bool) -> MessageOutcome:
    """The logged outcome of a success whose ack was made (``lost``: refused for a lost lease)."""
    if lost:
        logger.warning(
            "message %s finished but its lease was lost; it will be delivered again",
            message.id,
            extra=_log_extra(message),
        )
        return MessageOutcome(message.id, "lease_lost", attempts, None, result)
    logger.info("acked message %s", message.id, extra=_log_extra(message, attempts=attempts))
    return MessageOutcome(message.id, "acked", attempts, None, result)


Settled = tuple[MessageOutcome, BaseException | None]
"""A processed message's outcome, and the handler's final error (``None`` on
success) or, for a ``skipped`` message, the store's error."""


@dataclass(frozen=True, slots=True)
class _Ready:
    """A message about to run: its decoded value, and its retry record as now settled."""

    value: Any
    store: AttemptStore
    record: RetryRecord | None


class Delivery:
    """How one worker processes each of its messages, built once per worker.

    It holds what does not change from message to message (the queue, the
    handler, the config and the retryer's options) and is shared by the
    worker's threads or tasks; a message's own state lives in its call.

    Args:
        queue: The queue the messages were leased from.
        handler: Called with ``message.value`` (then a call's extra arguments).
        config: Retry and settlement options; a store given as a URL is opened
            once here (see :func:`configured`).
        sleep: Tenacity's sleep between retries, unless the config sets one.
        defer_ack: Report a success as ``acked`` without acking it: the caller
            acks it (with others) and reports a lost lease.
    """

    def __init__(
        self,
        queue: PersistentQueue,
        handler: Callable[..., Any],
        config: PersistentWorkerConfig,
        *,
        sleep: Callable[[float], Any] | None = None,
        defer_ack: bool = False,
    ) -> None:
        self.queue = queue
        self.handler = handler
        self.config = config = configured(config)
        self.defer_ack = defer_ack
        options = config.retry_options()
        store = options.pop("store", None)
        options.pop("store_path", None)  # configured() turned it into the store
        if sleep is not None and config.sleep is None:
            options["sleep"] = sleep
        self._store: AttemptStore | None = store
        self._retry_options = options

    # -- one message, sync and async ------------------------------------------

    def process(
        self,
        message: QueueMessage,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Settled:
        """Run the handler on one leased message under persistent retry, and settle it."""
        ready = self._ready(message)
        if not isinstance(ready, _Ready):
            return ready
        retrying = PersistentRetrying(**self._retrying_options(message, ready))
        watched, raised = _watched(self.handler)
        with self._heartbeat(message):
            try:
                result = retrying(watched, ready.value, *args, **(kwargs or {}))
            except ShutdownRequested:
                return self._interrupted(message, None)
            except Exception as exc:
                return self._failed(message, exc, raised, ready.store)
            except BaseException as exc:
                self._abandon(message, exc)
                raise
        return self.succeeded(message, result, _attempts_made(retrying), defer_ack=self.defer_ack)

    async def process_async(
        self,
        message: QueueMessage,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Settled:
        """The async twin of :meth:`process`, for a coroutine handler."""
        ready = self._ready(message)
        if not isinstance(ready, _Ready):
            return ready
        retrying = PersistentAsyncRetrying(**self._retrying_options(message, ready))
        watched, raised = _watched_async(self.handler)
        with self._heartbeat(message):
            try:
                result = await retrying(watched, ready.value, *args, **(kwargs or {}))
            except ShutdownRequested:
                return self._interrupted(message, None)
            except Exception as exc:
                return self._failed(message, exc, raised, ready.store)
            except BaseException as exc:  # cancelled, KeyboardInterrupt, SystemExit
                self._abandon(message, exc)
                raise
        return self.succeeded(message, result, _attempts_made(retrying), defer_ack=self.defer_ack)

    # -- the steps both share ---------------------------------------------------

    def _ready(self, message: QueueMessage) -> _Ready | Settled:
        """Decode the message and settle its retry record, or settle the message if either fails."""
        try:
            value = message.value
        except MessageDecodeError as exc:
            # Before any retry state: an undecodable message is dead-lettered without it.
            return self._undecodable(message, exc)
        store = self._store if self._store is not None else get_default_store()
        try:
            record = self._fresh_budget(store, message)
        except StoreError as exc:
            return self._skip(message, "read its retry record", exc)
        return _Ready(value, store, record)

    def _retrying_options(self, message: QueueMessage, ready: _Ready) -> dict[str, Any]:
        # The record was just read, so the retryer need not read it again; a
        # first attempt is written only if it fails (_fresh_budget counts the
        # deliveries whose process died before an outcome).
        return dict(
            self._retry_options,
            key=message.id,
            store=ready.store,
            defer_first_attempt=True,
            resume_from=ready.record,
        )

    @staticmethod
    def _fresh_budget(store: AttemptStore, message: QueueMessage) -> RetryRecord | None:
        """Clear or complete the message's retry record; returns the record as it now is."""
        record = store.get_record(message.id)
        if message.attempts == 1:
            # First delivery since put or requeue_dead (which resets attempts):
            # whatever a key of that id recorded before belongs to an earlier life.
            if record is not None:
                store.reset(message.id)
            return None
        if record is None:
            # Earlier deliveries left no record: each ran (at most) a first attempt,
            # which is written only once it fails, and its worker stopped or died
            # before an outcome. Count them, so a message that kills its worker
            # still spends its budget.
            for _ in range(message.attempts - 1):
                store.begin_attempt(message.id)
            record = store.record_failure(
                message.id,
                f"{message.attempts - 1} earlier deliveries ended without an outcome "
                "(the worker stopped or died)",
            )
        return record

    @contextlib.contextmanager
    def _heartbeat(self, message: QueueMessage) -> Iterator[None]:
        queue, config = self.queue, self.config
        lease = config.lease_timeout or queue.lease_timeout
        every = lease / 3 if config.heartbeat_interval is None else config.heartbeat_interval
        if every <= 0:
            yield
            return
        keeper = _keeper
        key = keeper.hold(queue, message, lease, every)
        try:
            yield
        finally:
            keeper.drop(key)

    def _failed(
        self,
        message: QueueMessage,
        exc: Exception,
        raised: list[BaseException],
        store: AttemptStore,
    ) -> Settled:
        if _store_failed(exc, raised):
            return self._skip(message, "record its attempt", exc)
        return self._handler_failed(message, exc, _attempts(store, message))

    def _abandon(self, message: QueueMessage, exc: BaseException) -> None:
        """Interrupted by ``exc`` (cancelled, KeyboardInterrupt, ...): hand the message back."""
        with contextlib.suppress(LocalQueueError):
            self._interrupted(message, format_error(exc))

    # -- settling ----------------------------------------------------------------

    def skipped(
        self, message: QueueMessage, doing: str, exc: BaseException, attempts: int = 0
    ) -> MessageOutcome:
        """The store failed while ``doing`` something for the message: leave it leased.

        Its lease expires and it is delivered again, so nothing is lost, and as
        nothing was settled nothing is settled twice.

        Raises:
            StoreError: ``exc`` itself, when it ends the run (see :func:`ends_run`).
        """
        if ends_run(exc):
            raise exc
        error = format_error(exc)
        logger.warning(
            "skipping message %s: could not %s (%s); it is delivered again when its lease expires",
            message.id,
            doing,
            error,
            extra=_log_extra(message, status="skipped", reason=type(exc).__name__, error=error),
        )
        return MessageOutcome(message.id, "skipped", attempts, error)

    def _skip(
        self, message: QueueMessage, doing: str, exc: BaseException, attempts: int = 0
    ) -> Settled:
        return self.skipped(message, doing, exc, attempts), exc

    def succeeded(
        self, message: QueueMessage, result: Any, attempts: int, *, defer_ack: bool = False
    ) -> Settled:
        """Ack a message whose handler succeeded (unless ``defer_ack``: see the class)."""
        if defer_ack:
            # The caller acks it, batched with others, and logs it then.
            return MessageOutcome(message.id, "acked", attempts, None, result), None
        try:
            self.queue.ack(message)
        except LeaseLostError:
            return ack_outcome(message, result, attempts, lost=True), None
        except LocalQueueError as exc:
            return self._skip(message, "ack it", exc, attempts)
        return ack_outcome(message, result, attempts, lost=False), None

    def _undecodable(self, message: QueueMessage, exc: MessageDecodeError) -> Settled:
        logger.error(
            "dead-lettering undecodable message %s: %s", message.id, exc, extra=_log_extra(message)
        )
        try:
            self.queue.dead_letter(message, error=exc, missing_ok=True)
        except LocalQueueError as store_exc:
            return self._skip(message, "dead-letter it", store_exc)
        return MessageOutcome(message.id, "dead_lettered", 0, format_error(exc)), exc

    def _handler_failed(self, message: QueueMessage, exc: BaseException, attempts: int) -> Settled:
        error = format_error(_underlying(exc))
        try:
            try:
                status = self._settle_failure(message, error)
            except ValidationError:
                if error is None:
                    raise
                # The store refused the error text itself: record it escaped to
                # plain ASCII, so the message still settles with its real error.
                error = ascii(error)[1:-1]
                status = self._settle_failure(message, error)
        except LeaseLostError:
            status = "lease_lost"
        except LocalQueueError as store_exc:
            # The failure is already recorded in the attempt store, so the
            # redelivery settles it at once without running the handler again.
            action = "dead-letter" if self.config.dead_letter_on_failure else "release"
            doing = f"{action} it (its handler failed: {error})"
            return self._skip(message, doing, store_exc, attempts)
        logger.warning(
            "message %s failed (%s): %s",
            message.id,
            status,
            error,
            extra=_log_extra(message, attempts=attempts, status=status, error=error),
        )
        return MessageOutcome(message.id, status, attempts, error), exc

    def _settle_failure(self, message: QueueMessage, error: str | None) -> OutcomeStatus:
        """Dead-letter (or release) a message that failed for good; returns how."""
        if self.config.dead_letter_on_failure:
            self.queue.dead_letter(message, error=error)
            return "dead_lettered"
        self.queue.release(message, delay=self.config.release_delay, error=error)
        return "released"

    def _interrupted(self, message: QueueMessage, error: str | None) -> Settled:
        # Shutting down: hand the message back now rather than leave it leased.
        try:
            self.queue.release(message, error=error, missing_ok=True)
        except LocalQueueError as exc:
            return self._skip(message, "release it on shutdown", exc)
        logger.info("released message %s on shutdown", message.id, extra=_log_extra(message))
        return MessageOutcome(message.id, "released", 0, error), None


def _attempts(store: AttemptStore, message: QueueMessage) -> int:
    """The attempts recorded for the message, for its outcome (0 if unreadable)."""
    try:
        record = store.get_record(message.id)
    except LocalQueueError as exc:
        if ends_run(exc):
            raise
        return 0  # only reported; the store's failure is logged where it matters
    return record.attempts if record is not None else 0


def _attempts_made(retrying: PersistentRetrying | PersistentAsyncRetrying) -> int:
    # After a success the record is usually gone (cleared for the next life of
    # the id); the retryer set this from the store's count when it began the
    # last attempt, so no read is needed.
    attempts: int = retrying.statistics.get("attempt_number", 0)
    return attempts


def _watched(handler: Callable[..., Any]) -> tuple[Callable[..., Any], list[BaseException]]:
    """``handler`` wrapped to remember what it raised, and the list it remembers into.

    The retryer raises the handler's errors and the attempt store's alike; only
    the handler's are the message's failure (a handler may raise a
    :class:`StoreError` of its own, from another queue).
    """
    raised: list[BaseException] = []

    @functools.wraps(handler)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except BaseException as exc:
            raised.append(exc)
            raise

    return call, raised


def _watched_async(
    handler: Callable[..., Awaitable[Any]],
) -> tuple[Callable[..., Awaitable[Any]], list[BaseException]]:
    """The async twin of :func:`_watched`."""
    raised: list[BaseException] = []

    @functools.wraps(handler)
    async def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return await handler(*args, **kwargs)
        except BaseException as exc:
            raised.append(exc)
            raise

    return call, raised


def _store_failed(exc: BaseException, raised: list[BaseException]) -> bool:
    """Whether the retryer's error came from its attempt store rather than the handler."""
    inner = _underlying(exc)
    return isinstance(inner, StoreError) and not any(inner is e for e in raised)
