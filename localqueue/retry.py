"""Persistent retries: Tenacity's retry model with the attempt count kept in an ``AttemptStore``.

:class:`PersistentRetrying` and :class:`PersistentAsyncRetrying` are
``tenacity.Retrying`` / ``tenacity.AsyncRetrying`` with one addition: every
attempt of a *key* is counted in an :class:`~localqueue.protocols.AttemptStore`
before it runs, so a process that restarts (or crashes mid-attempt) continues
the key's budget instead of starting over. Tenacity's ``stop``, ``wait``,
``retry``, ``before``, ``after``, ``before_sleep``, ``retry_error_callback``,
``reraise`` and ``sleep`` are accepted unchanged; the attempt number they see
is the persisted one.

```python
from tenacity import stop_after_attempt
from localqueue.retry import key_from_argument, persistent_retry

@persistent_retry(key_fn=key_from_argument("email_id"), stop=stop_after_attempt(3))
def send_email(email_id: str, address: str) -> None: ...
```

This module talks to the store protocol and the URL registry only; it never
imports a concrete store.
"""

from __future__ import annotations

import enum
import functools
import inspect
import os
import threading
import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any, NoReturn, ParamSpec, Self, TypeVar, cast

import tenacity
from tenacity import (
    AsyncRetrying,
    BaseRetrying,
    DoAttempt,
    DoSleep,
    Future,
    RetryCallState,
    Retrying,
)

from localqueue import _compat020
from localqueue._models import RetryRecord
from localqueue.errors import (
    AttemptStoreLockedError,
    MissingRetryKeyError,
    PersistentRetryExhausted,
    ValidationError,
)
from localqueue.protocols import AttemptStore
from localqueue.queue import format_error
from localqueue.registry import open_attempt_store
from localqueue.validation import check_retry_key

__all__ = [
    "DEFAULT_RETRY_STORE_PATH",
    "AttemptStoreLockedError",
    "KeyFn",
    "PersistentAsyncRetrying",
    "PersistentRetryExhausted",
    "PersistentRetrying",
    "configure_default_store",
    "configure_default_store_factory",
    "get_default_store",
    "idempotency_key_from_id",
    "key_from_argument",
    "key_from_attr",
    "persistent_async_retry",
    "persistent_retry",
]

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_RETRY_STORE_PATH = "localqueue_retries.sqlite3"
"""The SQLite file that holds retry state when no store is configured."""

KeyFn = Callable[[RetryCallState], "str | None"]
"""Computes a call's retry key from Tenacity's call state (``fn``, ``args``, ``kwargs``)."""

StoreArg = AttemptStore | str | os.PathLike[str]

# -- the default store --------------------------------------------------------

_default_lock = threading.Lock()
_default_store: AttemptStore | None = None
_default_factory: Callable[[], AttemptStore] | None = None


def _open_builtin_default() -> AttemptStore:
    # A plain path resolves to the SQLite backend through the registry.
    return open_attempt_store(DEFAULT_RETRY_STORE_PATH)


def configure_default_store(store: StoreArg | None) -> None:
    """Set the attempt store used by retryers and workers created without one.

    Args:
        store: A store, a store URL (opened now), or ``None`` to go back to the
            built-in default, the SQLite file :data:`DEFAULT_RETRY_STORE_PATH`
            opened lazily on first use.

    The previous default is not closed: retryers may still be using it.
    """
    global _default_store, _default_factory
    resolved = open_attempt_store(store) if isinstance(store, str | os.PathLike) else store
    with _default_lock:
        _default_store = resolved
        _default_factory = None


def configure_default_store_factory(factory: Callable[[], AttemptStore] | None) -> None:
    """Set a factory that opens the default attempt store lazily, on first use.

    Args:
        factory: Called once, the first time a retryer without a store needs one;
            ``None`` restores the built-in SQLite default.
    """
    global _default_store, _default_factory
    with _default_lock:
        _default_store = None
        _default_factory = factory


def get_default_store() -> AttemptStore:
    """The default attempt store, opening it on first use."""
    global _default_store
    with _default_lock:
        if _default_store is None:
            factory = _default_factory or _open_builtin_default
            _default_store = factory()
        return _default_store


# -- key helpers --------------------------------------------------------------


def _call_of(
    call: RetryCallState | Callable[..., Any] | None, args: Any, kwargs: Any
) -> tuple[Callable[..., Any] | None, tuple[Any, ...], dict[str, Any]]:
    """``(fn, args, kwargs)`` from Tenacity's call state, or as 0.2.0 passed them."""
    if isinstance(call, RetryCallState):
        return call.fn, tuple(call.args), dict(call.kwargs)
    return call, tuple(args or ()), dict(kwargs or {})


def _argument(
    fn: Callable[..., Any] | None, args: tuple[Any, ...], kwargs: dict[str, Any], name: str
) -> Any:
    if name in kwargs:
        return kwargs[name]
    if fn is not None:
        try:
            bound = inspect.signature(fn).bind_partial(*args, **kwargs)
        except (TypeError, ValueError):
            bound = None
        if bound is not None:
            bound.apply_defaults()
            if name in bound.arguments:
                return bound.arguments[name]
    where = getattr(fn, "__qualname__", None) or "the call"
    raise MissingRetryKeyError(f"argument {name!r} was not passed to {where}")


def _check_helper_name(what: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{what} must be a non-empty str, not {value!r}")


def _check_prefix(prefix: object) -> None:
    if prefix is not None:
        _check_helper_name("prefix", prefix)


def _with_prefix(prefix: str | None, value: object) -> str:
    return f"{prefix}:{value}" if prefix else str(value)


def _legacy_key_fn(key_fn: Callable[..., Any]) -> bool:
    """Whether ``key_fn`` takes 0.2.0's ``(fn, args, kwargs)`` rather than a call state."""
    try:
        params = list(inspect.signature(key_fn).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    return len(positional) == 3


def _as_key_fn(key_fn: Callable[..., Any] | None) -> KeyFn | None:
    """A key function called with the call state; 0.2.0's three-argument ones adapted."""
    if key_fn is None or not _legacy_key_fn(key_fn):
        return key_fn

    def from_state(state: RetryCallState) -> str | None:
        key: str | None = key_fn(state.fn, state.args, state.kwargs)
        return key

    return from_state


def key_from_argument(name: str, *, prefix: str | None = None) -> KeyFn:
    """A key function reading one argument of the call (by name, positional or keyword).

    The function takes Tenacity's call state, or 0.2.0's ``(fn, args, kwargs)``.

    Args:
        name: The parameter's name.
        prefix: Prepended as ``"prefix:value"``.

    Raises:
        ValidationError: ``name`` or ``prefix`` is empty or not a ``str``.
    """
    _check_helper_name("name", name)
    _check_prefix(prefix)

    def key_fn(call: Any, args: Any = None, kwargs: Any = None) -> str:
        value = _argument(*_call_of(call, args, kwargs), name)
        if value is None:
            raise MissingRetryKeyError(f"argument {name!r} is None; it cannot be a retry key")
        return _with_prefix(prefix, value)

    key_fn.__name__ = f"key_from_argument({name!r})"
    return key_fn


def key_from_attr(argument: str, attr: str, *, prefix: str | None = None) -> KeyFn:
    """A key function reading ``getattr(<argument>, attr)``, e.g. ``task.id``.

    The function takes Tenacity's call state, or 0.2.0's ``(fn, args, kwargs)``.

    Args:
        argument: The parameter holding the object.
        attr: The attribute of that object used as the key.
        prefix: Prepended as ``"prefix:value"``.

    Raises:
        ValidationError: ``argument``, ``attr`` or ``prefix`` is empty or not a ``str``.
    """
    _check_helper_name("argument", argument)
    _check_helper_name("attr", attr)
    _check_prefix(prefix)

    def key_fn(call: Any, args: Any = None, kwargs: Any = None) -> str:
        value = getattr(_argument(*_call_of(call, args, kwargs), argument), attr, None)
        if value is None:
            raise MissingRetryKeyError(f"{argument}.{attr} is missing or None")
        return _with_prefix(prefix, value)

    key_fn.__name__ = f"key_from_attr({argument!r}, {attr!r})"
    return key_fn


def idempotency_key_from_id(argument: str, *, prefix: str | None = None) -> KeyFn:
    """Shorthand for ``key_from_attr(argument, "id", prefix=prefix)``."""
    return key_from_attr(argument, "id", prefix=prefix)


# -- the retryers -------------------------------------------------------------

_UNSET: Any = object()


class _AttemptInterrupted(Exception):
    """Stands in for the unknown outcome of an attempt whose process stopped."""


class _PersistentMixin(BaseRetrying):
    """Key, store, construction and bookkeeping shared by the sync and async retryers.

    It comes first in their bases, so ``super()`` here reaches ``tenacity.Retrying``
    or ``tenacity.AsyncRetrying``.
    """

    _key: str | None
    _key_fn: KeyFn | None
    _store: AttemptStore | None
    _owns_store: bool
    clear_on_success: bool
    defer_first_attempt: bool
    # The record handed in as resume_from, as a one-tuple until a call takes it.
    _resume_from: tuple[RetryRecord | None] | None = None
    # With defer_first_attempt: the running attempt is the unwritten first one
    # (_lazy), and it is written only if it fails (_owed).
    _lazy: bool = False
    _owed: bool = False

    def __init__(
        self,
        *,
        key: str | None = None,
        key_fn: KeyFn | None = None,
        store: StoreArg | None = None,
        store_path: str | os.PathLike[str] | None = None,
        max_tries: int | None = None,
        clear_on_success: bool = True,
        defer_first_attempt: bool = False,
        resume_from: RetryRecord | None = _UNSET,
        stop: Any = _UNSET,
        **kwargs: Any,
    ) -> None:
        stop = self._stop_from(stop, max_tries)
        if stop is not _UNSET:
            kwargs["stop"] = stop
        super().__init__(**kwargs)
        self._init_persistence(key, key_fn, store, store_path, clear_on_success)
        self.defer_first_attempt = defer_first_attempt
        if resume_from is not _UNSET:
            self._resume_from = (resume_from,)

    def copy(  # type: ignore[override]
        self,
        *,
        key: Any = _UNSET,
        key_fn: Any = _UNSET,
        store: Any = _UNSET,
        clear_on_success: Any = _UNSET,
        max_tries: int | None = None,
        defer_first_attempt: Any = _UNSET,
        resume_from: Any = _UNSET,
        **kwargs: Any,
    ) -> Self:
        """A copy with some options changed, like ``tenacity.Retrying.copy``.

        Accepts Tenacity's options plus ``key``, ``key_fn``, ``store``,
        ``max_tries``, ``clear_on_success``, ``defer_first_attempt`` and
        ``resume_from`` (which, unlike the others, is not copied). A copy shares
        the store and never closes it.
        """
        if max_tries is not None:
            kwargs["stop"] = self._stop_from(kwargs.get("stop", _UNSET), max_tries)
        new = super().copy(**kwargs)
        self._copy_persistence(new, key, key_fn, store, clear_on_success)
        new.defer_first_attempt = (
            self.defer_first_attempt if defer_first_attempt is _UNSET else defer_first_attempt
        )
        if resume_from is not _UNSET:
            new._resume_from = (resume_from,)
        return new

    def _init_persistence(
        self,
        key: str | None,
        key_fn: KeyFn | None,
        store: StoreArg | None,
        store_path: str | os.PathLike[str] | None,
        clear_on_success: bool,
    ) -> None:
        if key is not None and key_fn is not None:
            raise ValidationError("pass either key or key_fn, not both")
        if key is not None:
            check_retry_key(key)
        if store is not None and store_path is not None:
            raise ValidationError("pass either store or store_path, not both")
        self._key = key
        self._key_fn = _as_key_fn(key_fn)
        self.clear_on_success = clear_on_success
        self._owns_store = False
        if store_path is not None:
            store = os.fspath(store_path)
        if isinstance(store, str | os.PathLike):
            self._store = open_attempt_store(store)
            self._owns_store = True
        else:
            self._store = store

    @staticmethod
    def _stop_from(stop: Any, max_tries: int | None) -> Any:
        if max_tries is None:
            return stop
        if isinstance(max_tries, bool) or not isinstance(max_tries, int) or max_tries < 1:
            raise ValidationError(f"max_tries must be an int >= 1, got {max_tries!r}")
        if stop is not _UNSET:
            raise ValidationError("pass either max_tries or stop, not both")
        return tenacity.stop_after_attempt(max_tries)

    @property
    def store(self) -> AttemptStore:
        """The attempt store (the configured default when none was given)."""
        return self._store if self._store is not None else get_default_store()

    @property
    def key(self) -> str | None:
        """The fixed retry key, if this retryer has one."""
        return self._key

    def close(self) -> None:
        """Close the attempt store if this retryer opened it from a URL or path."""
        if self._owns_store and self._store is not None:
            self._store.close()

    def _copy_persistence(
        self, new: _PersistentMixin, key: Any, key_fn: Any, store: Any, clear_on_success: Any
    ) -> None:
        if key is not _UNSET or key_fn is not _UNSET:
            new_key = None if key is _UNSET else key
            new_key_fn = None if key_fn is _UNSET else key_fn
        else:
            new_key, new_key_fn = self._key, self._key_fn
        new_store = self._store if store is _UNSET else store
        keep = self.clear_on_success if clear_on_success is _UNSET else clear_on_success
        # A copy never owns a store it was handed: the original closes it.
        new._init_persistence(new_key, new_key_fn, new_store, None, keep)

    def _resolve_key(self, state: RetryCallState) -> str:
        key = self._key
        if key is None and self._key_fn is not None:
            key = self._key_fn(state)
        if key is None or key == "":
            raise MissingRetryKeyError(
                "a persistent retry needs a key: pass key=..., key_fn=... or a key helper "
                "such as key_from_argument('job_id')"
            )
        return check_retry_key(key)

    def get_record(self, key: str | None = None) -> RetryRecord | None:
        """The persisted record of ``key`` (default: this retryer's fixed key)."""
        return self.store.get_record(self._fixed_key(key))

    def reset(self, key: str | None = None) -> bool:
        """Forget the record of ``key`` (default: this retryer's fixed key), restoring its budget.

        Returns:
            Whether a record was deleted.
        """
        return self.store.reset(self._fixed_key(key))

    def _fixed_key(self, key: str | None) -> str:
        key = key if key is not None else self._key
        if key is None:
            raise MissingRetryKeyError("this retryer has no fixed key; pass the key")
        return check_retry_key(key)

    # -- bookkeeping around Tenacity's loop -----------------------------------

    @staticmethod
    def _start_time_for(record: RetryRecord) -> float:
        # Delay-based stops (stop_after_delay) measure from the key's first attempt.
        elapsed = max(0.0, time.time() - record.first_attempt_at)
        return time.monotonic() - elapsed

    def _probe(self, state: RetryCallState, record: RetryRecord) -> RetryCallState:
        """A call state as it stood after the key's last started attempt, for the stop check."""
        probe = RetryCallState(state.retry_object, state.fn, state.args, state.kwargs)
        probe.attempt_number = record.attempts
        probe.start_time = self._start_time_for(record)
        error = _AttemptInterrupted(record.last_error or "the attempt's outcome is unknown")
        probe.outcome = Future.construct(record.attempts, error, True)
        probe.outcome_timestamp = time.monotonic()
        return probe

    def _exhaust(self, store: AttemptStore, key: str, record: RetryRecord) -> NoReturn:
        error = record.last_error or f"attempt {record.attempts} did not report an outcome"
        store.record_failure(key, error, exhausted=True)
        raise PersistentRetryExhausted(key, record.attempts, error)

    def _continue(self, state: RetryCallState, record: RetryRecord) -> None:
        state.attempt_number = record.attempts + 1
        state.start_time = self._start_time_for(record)

    def _begin_attempt(self, store: AttemptStore, key: str, state: RetryCallState) -> None:
        if self._lazy:
            # Only ever the first attempt of a key with no record: the call state
            # and begin()'s statistics already say attempt 1.
            self._lazy, self._owed = False, True
            return
        record = store.begin_attempt(key)
        # The store's count is authoritative (another process may share the key).
        state.attempt_number = record.attempts
        self.statistics["attempt_number"] = record.attempts

    @staticmethod
    def _outcome_error(state: RetryCallState) -> str | None:
        outcome = state.outcome
        if outcome is None:
            return None
        if outcome.failed:
            return format_error(outcome.exception())
        return f"retry rejected the result {outcome.result()!r}"

    def _after_final(
        self, store: AttemptStore, key: str, state: RetryCallState, stopped: bool
    ) -> None:
        """Record how the call ended: success, budget spent, or a failure not retried."""
        if stopped:
            self._pay_owed(store, key)
            store.record_failure(key, self._outcome_error(state), exhausted=True)
        elif state.outcome is not None and state.outcome.failed:
            pass  # recorded as soon as the attempt failed
        elif self._owed:
            self._owed = False  # a deferred first attempt succeeded: nothing was written
        elif self.clear_on_success:
            store.reset(key)

    def _pay_owed(self, store: AttemptStore, key: str) -> None:
        """Write the deferred first attempt, before anything is recorded about it."""
        if self._owed:
            self._owed = False
            store.begin_attempt(key)

    def _finish(self, store: AttemptStore, key: str, state: RetryCallState) -> None:
        self._after_final(store, key, state, bool(self.iter_state.stop_run_result))

    def _result_rejected(self, store: AttemptStore, key: str, state: RetryCallState) -> None:
        """Record a retry caused by a result (``retry_if_result``) rather than an error."""
        if state.outcome is not None and not state.outcome.failed:
            self._pay_owed(store, key)
            store.record_failure(key, self._outcome_error(state))

    def _attempt_raised(
        self, store: AttemptStore, key: str, state: RetryCallState, error: BaseException
    ) -> None:
        """Set ``error`` as the attempt's outcome and persist it."""
        state.set_exception((type(error), error, error.__traceback__))
        # Recorded before Tenacity's callbacks run, so they see it persisted.
        self._pay_owed(store, key)
        store.record_failure(key, self._outcome_error(state))

    def _record_to_continue(self, store: AttemptStore, key: str) -> RetryRecord | None:
        """The key's record before the call, refusing one already exhausted."""
        if self._resume_from is not None:
            (record,), self._resume_from = self._resume_from, None
        else:
            record = store.get_record(key)
        if record is not None and record.exhausted:
            raise PersistentRetryExhausted(key, record.attempts, record.last_error)
        self._lazy, self._owed = self.defer_first_attempt and record is None, False
        return record

    # -- the call, as steps that a sync or an async driver runs -----------------

    def _accepts_any_result(self) -> bool:
        # The default ``retry`` (retry_if_exception_type) never retries a result.
        return type(self.retry) is tenacity.retry_if_exception_type

    def _call_steps(self, state: RetryCallState) -> _Steps:
        """One call under the key's budget, as the steps its driver runs.

        The driver runs each step it is handed (awaiting it when async) and sends
        back its result; ``ITER`` and ``ATTEMPT`` get ``(value, error)``. The
        returned ``(result, error)`` is what the call returns or raises.
        """
        key = self._resolve_key(state)
        store = self.store
        record = self._record_to_continue(store, key)
        if record is not None:
            if (yield _Step.STOP, self._probe(state, record)):
                self._exhaust(store, key, record)
            self._continue(state, record)
        elif self._lazy and self.before is tenacity.before_nothing:
            # Tenacity has nothing to do before an unwritten first attempt: run it
            # without the loop, whose bookkeeping costs more than a quick handler.
            # A failure is handed to the loop as attempt 1's outcome, as if it ran it.
            yield from self._attempt(store, key, state)
            outcome = state.outcome
            if self._accepts_any_result() and outcome is not None and not outcome.failed:
                self._owed = False  # nothing was written, nothing to clear
                return outcome.result(), None
        while True:
            do, error = yield _Step.ITER, None
            if error is not None:
                if state.outcome is not None:
                    self._finish(store, key, state)
                return None, error
            if isinstance(do, DoAttempt):
                yield from self._attempt(store, key, state)
            elif isinstance(do, DoSleep):
                self._result_rejected(store, key, state)
                state.prepare_for_next_attempt()
                yield _Step.SLEEP, do
            else:
                self._finish(store, key, state)
                return do, None

    def _attempt(
        self, store: AttemptStore, key: str, state: RetryCallState
    ) -> Generator[tuple[_Step, Any], Any, None]:
        """Count one attempt, have the driver run it, and set its outcome on ``state``."""
        self._begin_attempt(store, key, state)
        result, error = yield _Step.ATTEMPT, None
        if error is None:
            state.set_result(result)
        else:
            self._attempt_raised(store, key, state, error)


class _Step(enum.Enum):
    """What :meth:`_PersistentMixin._call_steps` asks its driver to do next."""

    STOP = "evaluate stop on a call state"
    ITER = "run Tenacity's iter()"
    ATTEMPT = "call fn"
    SLEEP = "sleep"
    DONE = "return or raise"


_Steps = Generator[tuple[_Step, Any], Any, tuple[Any, "BaseException | None"]]


def _advance(steps: _Steps, reply: Any) -> tuple[_Step, Any]:
    """Send ``reply`` to the call's steps; the next step, or ``DONE`` with the ending."""
    try:
        return steps.send(reply)
    except StopIteration as done:
        return _Step.DONE, done.value


def _ending(ending: tuple[Any, BaseException | None]) -> Any:
    result, error = ending
    if error is not None:
        raise error
    return result


class PersistentRetrying(_PersistentMixin, Retrying):
    """``tenacity.Retrying`` whose attempts per key persist in an :class:`AttemptStore`.

    Args:
        key: A fixed retry key for every call.
        key_fn: Computes the key of each call from Tenacity's call state; see
            :func:`key_from_argument`, :func:`key_from_attr`, :func:`idempotency_key_from_id`.
        store: An attempt store or a store URL (default: :func:`get_default_store`).
        store_path: A SQLite file path; shorthand for ``store=path``.
        max_tries: Shorthand for ``stop=stop_after_attempt(max_tries)``.
        clear_on_success: Forget the key's record when a call succeeds, so the
            next call with the key gets a fresh budget.
        defer_first_attempt: For a key with no record, write the first attempt
            only once it fails, so a first-try success costs no store write. An
            attempt whose process died is then not counted: use it only when the
            caller counts those itself, as queue workers do from deliveries.
        resume_from: The key's record as the caller has just read it (``None``:
            it has none); the next call starts from it instead of reading it again.
        **kwargs: Tenacity's options, unchanged: ``stop``, ``wait``, ``retry``,
            ``before``, ``after``, ``before_sleep``, ``reraise``,
            ``retry_error_callback``, ``sleep``, ...

    Calling it runs ``fn`` like Tenacity does, except that:

    * a key whose record is exhausted raises
      :class:`~localqueue.errors.PersistentRetryExhausted` before ``fn`` is called;
    * each attempt is counted in the store before it runs, and the attempt
      number Tenacity's strategies see is the persisted count, so a restart
      continues the budget (an attempt whose process died counts too);
    * a failure that is retried or ends the call is recorded as the key's
      ``last_error``; when ``stop`` ends the call the record is marked
      exhausted.

    Iterating (``for attempt in retrying``) is not supported: an attempt's
    outcome must be known to be persisted.

    Raises:
        MissingRetryKeyError: A call has no key (none given, or ``key_fn`` returned none).
    """

    def __iter__(self) -> Any:
        raise TypeError("PersistentRetrying cannot be iterated; call it or use it as a decorator")

    def __call__(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Call ``fn(*args, **kwargs)`` under the key's persistent retry budget."""
        if not self.enabled:
            return fn(*args, **kwargs)
        self.begin()
        state = RetryCallState(retry_object=self, fn=fn, args=args, kwargs=kwargs)
        steps = self._call_steps(state)
        step, arg = _advance(steps, None)
        reply: Any
        while step is not _Step.DONE:
            if step is _Step.SLEEP:
                reply = self.sleep(arg)
            elif step is _Step.STOP:
                reply = self.stop(arg)
            else:
                try:
                    value = (
                        fn(*args, **kwargs)
                        if step is _Step.ATTEMPT
                        else self.iter(retry_state=state)
                    )
                except BaseException as exc:
                    # Advanced here, so a store error while recording it chains to it.
                    step, arg = _advance(steps, (None, exc))
                    continue
                reply = value, None
            step, arg = _advance(steps, reply)
        return cast(R, _ending(arg))


class PersistentAsyncRetrying(_PersistentMixin, AsyncRetrying):
    """``tenacity.AsyncRetrying`` with persistent attempts; see :class:`PersistentRetrying`.

    Accepts the same arguments; ``fn`` may be a coroutine function, and
    Tenacity's callbacks and ``sleep`` may be async. Store calls are made
    directly (they are short local operations).
    """

    def __aiter__(self) -> Any:
        raise TypeError(
            "PersistentAsyncRetrying cannot be iterated; await a call or use it as a decorator"
        )

    async def __call__(  # type: ignore[override]
        self, fn: Callable[..., Awaitable[R] | R], *args: Any, **kwargs: Any
    ) -> R:
        """Await ``fn(*args, **kwargs)`` under the key's persistent retry budget."""
        is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004 - async callable objects count too
        )
        if not self.enabled:
            outcome = fn(*args, **kwargs)
            return cast(R, await outcome if inspect.isawaitable(outcome) else outcome)
        self.begin()
        state = RetryCallState(retry_object=self, fn=fn, args=args, kwargs=kwargs)
        steps = self._call_steps(state)
        step, arg = _advance(steps, None)
        reply: Any
        value: Any
        while step is not _Step.DONE:
            if step is _Step.SLEEP:
                await cast(Awaitable[None], self.sleep(arg))
                reply = None
            elif step is _Step.STOP:
                reply = cast(Any, self.stop)(arg)
                if inspect.isawaitable(reply):
                    reply = await reply
            else:
                try:
                    if step is _Step.ATTEMPT:
                        value = fn(*args, **kwargs)
                        if is_async or inspect.isawaitable(value):
                            value = await cast(Awaitable[R], value)
                    else:
                        value = await self.iter(retry_state=state)
                except BaseException as exc:
                    step, arg = _advance(steps, (None, exc))
                    continue
                reply = value, None
            step, arg = _advance(steps, reply)
        return cast(R, _ending(arg))


# -- decorators ---------------------------------------------------------------


def _require_key(key: str | None, key_fn: KeyFn | None) -> None:
    if key is None and key_fn is None:
        raise MissingRetryKeyError(
            "a persistent retry needs a key: pass key=... or key_fn=... "
            "(e.g. key_fn=key_from_argument('job_id'))"
        )


def persistent_retry(
    *,
    key: str | None = None,
    key_fn: KeyFn | None = None,
    store: StoreArg | None = None,
    store_path: str | os.PathLike[str] | None = None,
    max_tries: int | None = None,
    clear_on_success: bool = True,
    **kwargs: Any,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function to retry under a persistent budget; see :class:`PersistentRetrying`.

    The decorated function keeps Tenacity's ``retry`` attribute (the
    :class:`PersistentRetrying`) and ``retry_with``.

    Raises:
        MissingRetryKeyError: Neither ``key`` nor ``key_fn`` is given.
    """
    _require_key(key, key_fn)
    retrying = PersistentRetrying(
        key=key,
        key_fn=key_fn,
        store=store,
        store_path=store_path,
        max_tries=max_tries,
        clear_on_success=clear_on_success,
        **kwargs,
    )

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(fn):
            raise TypeError(f"{fn.__qualname__} is async; use persistent_async_retry")
        return cast(Callable[P, R], retrying.wraps(fn))

    return decorate


def persistent_async_retry(
    *,
    key: str | None = None,
    key_fn: KeyFn | None = None,
    store: StoreArg | None = None,
    store_path: str | os.PathLike[str] | None = None,
    max_tries: int | None = None,
    clear_on_success: bool = True,
    **kwargs: Any,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Decorate a coroutine function; see :func:`persistent_retry`.

    Raises:
        MissingRetryKeyError: Neither ``key`` nor ``key_fn`` is given.
    """
    _require_key(key, key_fn)
    retrying = PersistentAsyncRetrying(
        key=key,
        key_fn=key_fn,
        store=store,
        store_path=store_path,
        max_tries=max_tries,
        clear_on_success=clear_on_success,
        **kwargs,
    )

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(fn)
        async def wrapped(*args: P.args, **kw: P.kwargs) -> R:
            return await retrying.copy()(fn, *args, **kw)

        wrapped.retry = retrying  # type: ignore[attr-defined]
        return wrapped

    return decorate


def __getattr__(name: str) -> Any:
    # 0.2.0 exported the attempt stores from this module; they load on first use.
    return _compat020.resolve(__name__, name, _compat020.ATTEMPT_STORES)
