"""Queue workers: lease a message, run a handler under persistent retry, then settle it.

```python
from localqueue import PersistentQueue, PersistentWorkerConfig, persistent_worker

queue = PersistentQueue("emails", store="sqlite:///jobs.db")

@persistent_worker(queue, config=PersistentWorkerConfig(max_tries=5))
def send_email_job(job: dict[str, str]) -> None: ...

send_email_job()  # leases one message and processes it
```

The rules, shared by :func:`persistent_worker`, :func:`persistent_async_worker`
and the long-running :class:`~localqueue.runner.Worker`:

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
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import inspect
import itertools
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar

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
from localqueue.retry import PersistentAsyncRetrying, PersistentRetrying
from localqueue.validation import check_delay, check_lease_timeout, check_worker_id

__all__ = [
    "MessageOutcome",
    "OutcomeStatus",
    "PersistentWorkerConfig",
    "persistent_async_worker",
    "persistent_worker",
]

logger = logging.getLogger("localqueue.worker")

P = ParamSpec("P")
R = TypeVar("R")

OutcomeStatus = Literal["acked", "dead_lettered", "released", "lease_lost", "skipped"]
"""How a processed message was settled (``skipped``: the store failed, the message was
left leased and is delivered again once its lease expires)."""


def _ends_run(exc: BaseException) -> bool:
    """Whether a store error means the store cannot serve this worker again.

    A closed store, a schema from a newer release and a configuration error
    stay that way however long a worker waits, so they end a run; every other
    store error is about one message, or an engine that may recover.
    """
    return isinstance(exc, StoreClosedError | SchemaVersionError | ConfigurationError)


def _is_transient(exc: BaseException) -> bool:
    """Whether the same store call may succeed if simply made again.

    Lock timeouts, lost connections, a full disk: any :class:`StoreError` but a
    damaged record (:class:`StoreCorruptedError`) and those that end a run.
    """
    return (
        isinstance(exc, StoreError)
        and not _ends_run(exc)
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


def _config(
    config: PersistentWorkerConfig | None, options: dict[str, Any]
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


class _ShutdownRequested(Exception):
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


@contextlib.contextmanager
def _heartbeat(
    queue: PersistentQueue, message: QueueMessage, config: PersistentWorkerConfig
) -> Iterator[None]:
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


def _underlying(exc: BaseException) -> BaseException:
    if isinstance(exc, tenacity.RetryError) and exc.last_attempt.failed:
        inner = exc.last_attempt.exception()
        if inner is not None:
            return inner
    return exc


def _log_extra(message: QueueMessage, **more: Any) -> dict[str, Any]:
    return {"queue": message.queue, "message_id": message.id, **more}


def _ack_outcome(
    message: QueueMessage, result: Any, attempts: int, *, lost: bool
) -> MessageOutcome:
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


class _Processor:
    """The per-message steps shared by the sync and async paths."""

    def __init__(self, queue: PersistentQueue, config: PersistentWorkerConfig) -> None:
        self.queue = queue
        self.config = config
        self.store_error: BaseException | None = None
        """The store error that made :meth:`skipped` skip the message, if any."""

    def retrying_options(self, message: QueueMessage, sleep: Any) -> dict[str, Any]:
        options = self.config.retry_options()
        if sleep is not None and self.config.sleep is None:
            options["sleep"] = sleep
        options["key"] = message.id
        return options

    def fresh_budget(self, store: AttemptStore, message: QueueMessage) -> RetryRecord | None:
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

    def prepare(
        self,
        retrying: PersistentRetrying | PersistentAsyncRetrying,
        message: QueueMessage,
    ) -> None:
        """Settle the message's record and tell the retryer what it may skip."""
        retrying._defer_first = True
        retrying._known_record = (self.fresh_budget(retrying.store, message),)
        # Tenacity runs nothing around a first attempt without a ``before``
        # callback, and the default ``retry`` accepts every result (only the
        # sync retryer reads these).
        retrying._bare_first = self.config.before is None
        retrying._any_result = self.config.retry is None

    def attempts(self, store: AttemptStore, message: QueueMessage) -> int:
        try:
            record = store.get_record(message.id)
        except LocalQueueError as exc:
            if _ends_run(exc):
                raise
            return 0  # only reported; the store's failure is logged where it matters
        return record.attempts if record is not None else 0

    @staticmethod
    def attempts_made(retrying: PersistentRetrying | PersistentAsyncRetrying) -> int:
        # After a success the record is usually gone (cleared for the next
        # life of the id); the retryer set this from the store's count when it
        # began the last attempt, so no read is needed.
        attempts: int = retrying.statistics.get("attempt_number", 0)
        return attempts

    def skipped(
        self, message: QueueMessage, doing: str, exc: BaseException, attempts: int = 0
    ) -> MessageOutcome:
        """The store failed while ``doing`` something for the message: leave it leased.

        Its lease expires and it is delivered again, so nothing is lost, and as
        nothing was settled nothing is settled twice.

        Raises:
            StoreError: ``exc`` itself, when it ends the run (see :func:`_ends_run`).
        """
        if _ends_run(exc):
            raise exc
        self.store_error = exc
        error = format_error(exc)
        logger.warning(
            "skipping message %s: could not %s (%s); it is delivered again when its lease expires",
            message.id,
            doing,
            error,
            extra=_log_extra(message, status="skipped", reason=type(exc).__name__, error=error),
        )
        return MessageOutcome(message.id, "skipped", attempts, error)

    def decode_failed(self, message: QueueMessage, exc: MessageDecodeError) -> MessageOutcome:
        logger.error(
            "dead-lettering undecodable message %s: %s", message.id, exc, extra=_log_extra(message)
        )
        try:
            self.queue.dead_letter(message, error=exc, missing_ok=True)
        except LocalQueueError as store_exc:
            return self.skipped(message, "dead-letter it", store_exc)
        return MessageOutcome(message.id, "dead_lettered", 0, format_error(exc))

    def succeeded(
        self, message: QueueMessage, result: Any, attempts: int, *, defer_ack: bool = False
    ) -> MessageOutcome:
        if defer_ack:
            # The caller acks it, batched with others, and logs it then.
            return MessageOutcome(message.id, "acked", attempts, None, result)
        try:
            self.queue.ack(message)
        except LeaseLostError:
            return _ack_outcome(message, result, attempts, lost=True)
        except LocalQueueError as exc:
            return self.skipped(message, "ack it", exc, attempts)
        return _ack_outcome(message, result, attempts, lost=False)

    def failed(self, message: QueueMessage, exc: BaseException, attempts: int) -> MessageOutcome:
        error = format_error(_underlying(exc))
        try:
            try:
                status = self.settle_failure(message, error)
            except ValidationError:
                if error is None:
                    raise
                # The store refused the error text itself: record it escaped to
                # plain ASCII, so the message still settles with its real error.
                error = ascii(error)[1:-1]
                status = self.settle_failure(message, error)
        except LeaseLostError:
            status = "lease_lost"
        except LocalQueueError as store_exc:
            # The failure is already recorded in the attempt store, so the
            # redelivery settles it at once without running the handler again.
            action = "dead-letter" if self.config.dead_letter_on_failure else "release"
            doing = f"{action} it (its handler failed: {error})"
            return self.skipped(message, doing, store_exc, attempts)
        logger.warning(
            "message %s failed (%s): %s",
            message.id,
            status,
            error,
            extra=_log_extra(message, attempts=attempts, status=status, error=error),
        )
        return MessageOutcome(message.id, status, attempts, error)

    def settle_failure(self, message: QueueMessage, error: str | None) -> OutcomeStatus:
        """Dead-letter (or release) a message that failed for good; returns how."""
        if self.config.dead_letter_on_failure:
            self.queue.dead_letter(message, error=error)
            return "dead_lettered"
        self.queue.release(message, delay=self.config.release_delay, error=error)
        return "released"

    def interrupted(self, message: QueueMessage, error: str | None) -> MessageOutcome:
        # Shutting down: hand the message back now rather than leave it leased.
        try:
            self.queue.release(message, error=error, missing_ok=True)
        except LocalQueueError as exc:
            return self.skipped(message, "release it on shutdown", exc)
        logger.info("released message %s on shutdown", message.id, extra=_log_extra(message))
        return MessageOutcome(message.id, "released", 0, error)


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


def _process(
    queue: PersistentQueue,
    message: QueueMessage,
    handler: Callable[..., Any],
    config: PersistentWorkerConfig,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    sleep: Callable[[float], None] | None = None,
    defer_ack: bool = False,
) -> tuple[MessageOutcome, BaseException | None]:
    """Run ``handler`` on one leased message and settle it; returns the outcome and the
    handler's final error (``None`` on success), or for a ``skipped`` message the
    store's error.

    With ``defer_ack`` a success is returned as ``acked`` without acking: the
    caller must ack it (and report a lost lease)."""
    steps = _Processor(queue, config)
    outcome, error = _process_steps(steps, message, handler, args, kwargs or {}, sleep, defer_ack)
    return outcome, steps.store_error if outcome.status == "skipped" else error


def _process_steps(
    steps: _Processor,
    message: QueueMessage,
    handler: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    sleep: Callable[[float], None] | None,
    defer_ack: bool,
) -> tuple[MessageOutcome, BaseException | None]:
    queue, config = steps.queue, steps.config
    try:
        value = message.value
    except MessageDecodeError as exc:
        # Before any retry state: an undecodable message is dead-lettered without it.
        return steps.decode_failed(message, exc), exc
    retrying = PersistentRetrying(**steps.retrying_options(message, sleep))
    store = retrying.store
    try:
        steps.prepare(retrying, message)
    except StoreError as exc:
        return steps.skipped(message, "read its retry record", exc), exc
    watched, raised = _watched(handler)
    with _heartbeat(queue, message, config):
        try:
            result = retrying(watched, value, *args, **kwargs)
        except _ShutdownRequested:
            return steps.interrupted(message, None), None
        except Exception as exc:
            if _store_failed(exc, raised):
                return steps.skipped(message, "record its attempt", exc), exc
            return steps.failed(message, exc, steps.attempts(store, message)), exc
        except BaseException as exc:
            with contextlib.suppress(LocalQueueError):
                steps.interrupted(message, format_error(exc))
            raise
    return steps.succeeded(
        message, result, steps.attempts_made(retrying), defer_ack=defer_ack
    ), None


async def _process_async(
    queue: PersistentQueue,
    message: QueueMessage,
    handler: Callable[..., Awaitable[Any]],
    config: PersistentWorkerConfig,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> tuple[MessageOutcome, BaseException | None]:
    """The async twin of :func:`_process`."""
    steps = _Processor(queue, config)
    outcome, error = await _process_steps_async(steps, message, handler, args, kwargs or {}, sleep)
    return outcome, steps.store_error if outcome.status == "skipped" else error


async def _process_steps_async(
    steps: _Processor,
    message: QueueMessage,
    handler: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    sleep: Callable[[float], Awaitable[None]] | None,
) -> tuple[MessageOutcome, BaseException | None]:
    queue, config = steps.queue, steps.config
    try:
        value = message.value
    except MessageDecodeError as exc:
        # Before any retry state: an undecodable message is dead-lettered without it.
        return steps.decode_failed(message, exc), exc
    retrying = PersistentAsyncRetrying(**steps.retrying_options(message, sleep))
    store = retrying.store
    try:
        steps.prepare(retrying, message)
    except StoreError as exc:
        return steps.skipped(message, "read its retry record", exc), exc
    watched, raised = _watched_async(handler)
    with _heartbeat(queue, message, config):
        try:
            result = await retrying(watched, value, *args, **kwargs)
        except _ShutdownRequested:
            return steps.interrupted(message, None), None
        except Exception as exc:
            if _store_failed(exc, raised):
                return steps.skipped(message, "record its attempt", exc), exc
            return steps.failed(message, exc, steps.attempts(store, message)), exc
        except BaseException as exc:  # cancelled, KeyboardInterrupt, SystemExit
            with contextlib.suppress(LocalQueueError):
                steps.interrupted(message, format_error(exc))
            raise
    return steps.succeeded(message, result, steps.attempts_made(retrying)), None


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
    cfg = _config(config, options)

    def decorate(handler: Callable[Concatenate[Any, P], R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(handler):
            raise TypeError(f"{handler.__qualname__} is async; use persistent_async_worker")

        @functools.wraps(handler)
        def process_one(*args: P.args, **kwargs: P.kwargs) -> R:
            message = _lease_one(queue, cfg)
            outcome, error = _process(queue, message, handler, cfg, args, kwargs)
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
    cfg = _config(config, options)

    def decorate(
        handler: Callable[Concatenate[Any, P], Awaitable[R]],
    ) -> Callable[P, Awaitable[R]]:
        @functools.wraps(handler)
        async def process_one(*args: P.args, **kwargs: P.kwargs) -> R:
            if cfg.block:
                message = await asyncio.to_thread(_lease_one, queue, cfg)
            else:
                message = _lease_one(queue, cfg)
            outcome, error = await _process_async(queue, message, handler, cfg, args, kwargs)
            if error is not None:
                raise error
            result: R = outcome.result
            return result

        return process_one

    return decorate
