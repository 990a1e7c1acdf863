"""Argument checks shared by every store, so each rejects bad input the same way.

Stores call these before touching storage, so a rejected call changes
nothing. Third-party backends should call them too; the conformance suite
checks that they do.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from localqueue.errors import InvalidQueueNameError, PayloadTooLargeError, ValidationError

__all__ = [
    "MAX_BATCH",
    "MAX_ERROR_LENGTH",
    "MAX_KEY_LENGTH",
    "MAX_PAYLOAD_BYTES",
    "MAX_PRIORITY",
    "MAX_QUEUE_NAME_LENGTH",
    "MIN_PRIORITY",
    "QUEUE_NAME_PATTERN",
    "SHARED_LIMITS",
    "StoreLimits",
    "check_batch",
    "check_dedup_key",
    "check_delay",
    "check_error",
    "check_lease",
    "check_lease_timeout",
    "check_leases",
    "check_limit",
    "check_max_deliveries",
    "check_max_size",
    "check_message_id",
    "check_message_ids",
    "check_payload",
    "check_priority",
    "check_purge_target",
    "check_put",
    "check_put_many",
    "check_queue_name",
    "check_retry_key",
    "check_timeout",
    "check_worker_id",
    "limits_of",
    "storable_text",
]

QUEUE_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")  # MAX_QUEUE_NAME_LENGTH
"""Queue names: 1 to 128 characters, letters, digits, ``_ . : -``, starting alphanumeric."""
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024
"""Largest serialised value accepted by ``put`` (16 MiB). Store big blobs elsewhere."""
MAX_BATCH = 10_000
"""Most messages one ``put_many``, ``lease`` or ``ack_many`` call handles."""
MIN_PRIORITY = -(2**31)
MAX_PRIORITY = 2**31 - 1
MAX_KEY_LENGTH = 512
"""Longest dedup key, retry key or worker id."""
MAX_ERROR_LENGTH = 8192
"""Recorded errors longer than this are truncated (never rejected)."""
MAX_QUEUE_NAME_LENGTH = 128
"""Longest queue name (see :data:`QUEUE_NAME_PATTERN`)."""


@dataclass(frozen=True, slots=True)
class StoreLimits:
    """The largest inputs a store accepts, declared as a store's ``limits`` attribute.

    No store accepts more than the shared limits the checks in this module
    enforce. An engine that cannot store that much (a key column of 255
    characters, a server's payload cap) declares tighter values here and
    refuses anything beyond them with the same errors
    (:class:`~localqueue.errors.PayloadTooLargeError`,
    :class:`~localqueue.errors.ValidationError`). The conformance suite
    stores inputs exactly at the declared limits and checks that one more is
    refused with nothing stored.
    """

    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    """Largest serialised value."""
    max_queue_name_length: int = MAX_QUEUE_NAME_LENGTH
    """Longest queue name."""
    max_key_length: int = MAX_KEY_LENGTH
    """Longest dedup key, retry key or worker id."""
    max_batch: int = MAX_BATCH
    """Most messages in one ``put_many``, ``lease`` or ``ack_many`` call."""


SHARED_LIMITS = StoreLimits()
"""The limits of a store that declares none: the ones this module's checks enforce."""


def limits_of(store: object) -> StoreLimits:
    """The limits ``store`` declares in its ``limits`` attribute, else :data:`SHARED_LIMITS`."""
    limits = getattr(store, "limits", SHARED_LIMITS)
    return limits if isinstance(limits, StoreLimits) else SHARED_LIMITS


# Names already checked skip the regex; every call of every store checks one.
_valid_names: set[str] = set()
_VALID_NAMES_KEPT = 1024


def check_queue_name(name: object) -> str:
    """Return ``name`` if it is a valid queue name.

    Raises:
        InvalidQueueNameError: It is not a string matching :data:`QUEUE_NAME_PATTERN`.
    """
    if type(name) is str and name in _valid_names:
        return name
    if not isinstance(name, str):
        raise InvalidQueueNameError(name, "must be a string")
    if QUEUE_NAME_PATTERN.fullmatch(name) is None:
        raise InvalidQueueNameError(
            name,
            "use 1-128 letters, digits, '_', '.', ':' or '-', starting with a letter or digit",
        )
    if len(_valid_names) < _VALID_NAMES_KEPT:
        _valid_names.add(name)
    return name


def _check_seconds(what: str, value: object, *, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{what} must be a number of seconds, not {type(value).__name__}")
    seconds = float(value)
    if not math.isfinite(seconds):
        raise ValidationError(f"{what} must be finite, got {value!r}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValidationError(f"{what} must be {bound}, got {value!r}")
    return seconds


def check_delay(delay: object) -> float:
    """Return ``delay`` as float seconds; it must be finite and ``>= 0``."""
    return _check_seconds("delay", delay, allow_zero=True)


def check_lease_timeout(lease_timeout: object) -> float:
    """Return ``lease_timeout`` as float seconds; it must be finite and ``> 0``."""
    return _check_seconds("lease_timeout", lease_timeout, allow_zero=False)


def check_timeout(timeout: object) -> float:
    """Return a wait ``timeout`` as float seconds; it must be finite and ``>= 0``."""
    return _check_seconds("timeout", timeout, allow_zero=True)


def check_priority(priority: object) -> int:
    """Return ``priority`` if it is an int in the signed 32-bit range."""
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ValidationError(f"priority must be an int, not {type(priority).__name__}")
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise ValidationError(f"priority must be within [{MIN_PRIORITY}, {MAX_PRIORITY}]")
    return priority


def check_limit(limit: object) -> int:
    """Return a batch ``limit`` if it is an int within ``1..MAX_BATCH``."""
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise ValidationError(f"limit must be an int, not {type(limit).__name__}")
    if not 1 <= limit <= MAX_BATCH:
        raise ValidationError(f"limit must be within [1, {MAX_BATCH}], got {limit}")
    return limit


def check_max_size(max_size: object) -> int | None:
    """Return a ``put`` capacity bound: ``None`` (no bound) or an int >= 1."""
    if max_size is None:
        return None
    if isinstance(max_size, bool) or not isinstance(max_size, int):
        raise ValidationError(f"max_size must be an int or None, not {type(max_size).__name__}")
    if max_size < 1:
        raise ValidationError(f"max_size must be >= 1, got {max_size}")
    return max_size


def _check_key(what: str, key: object) -> str:
    if not isinstance(key, str):
        raise ValidationError(f"{what} must be a string, not {type(key).__name__}")
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValidationError(f"{what} must have 1 to {MAX_KEY_LENGTH} characters")
    if not key.isprintable() and not _storable(key):
        # PostgreSQL text cannot hold NUL and no engine can store a lone surrogate
        # as UTF-8; refusing them here makes every store behave alike.
        raise ValidationError(f"{what} must not contain NUL characters or lone surrogates")
    return key


def _storable(text: str) -> bool:
    """True when ``text`` has no NUL and encodes as UTF-8 (no lone surrogates)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable_text(text: str) -> str:
    """``text`` with NUL characters and lone surrogates escaped in backslash form.

    Every engine can store the result, so free text such as an error message is
    kept the same way on every store: ``"a\x00b"`` becomes ``"a\\x00b"`` and a lone
    surrogate ``"\udc80"`` becomes ``"\\udc80"``. Text without them is returned as is.
    """
    if _storable(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def check_dedup_key(key: object) -> str | None:
    """Return a dedup key (or ``None``); a key is a 1-512 character string."""
    return None if key is None else _check_key("dedup_key", key)


def check_worker_id(worker_id: object) -> str | None:
    """Return a worker id (or ``None``); an id is a 1-512 character string."""
    return None if worker_id is None else _check_key("leased_by", worker_id)


def check_retry_key(key: object) -> str:
    """Return a retry key; it is a 1-512 character string."""
    return _check_key("retry key", key)


def check_payload(payload: object) -> bytes:
    """Return ``payload`` if it is bytes no larger than :data:`MAX_PAYLOAD_BYTES`."""
    if not isinstance(payload, bytes):
        raise ValidationError(f"payload must be bytes, not {type(payload).__name__}")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLargeError(len(payload), MAX_PAYLOAD_BYTES)
    return payload


def check_batch(payloads: object) -> list[bytes]:
    """Return the payloads of a ``put_many`` call, each checked, at most :data:`MAX_BATCH`."""
    if isinstance(payloads, bytes | str) or not isinstance(payloads, Sequence):
        raise ValidationError("payloads must be a sequence of bytes")
    if len(payloads) > MAX_BATCH:
        raise ValidationError(f"a batch holds at most {MAX_BATCH} messages, got {len(payloads)}")
    return [check_payload(p) for p in payloads]


def check_error(error: object) -> str | None:
    """Return an error text to record: :func:`storable_text`, truncated to
    :data:`MAX_ERROR_LENGTH` characters."""
    if error is None:
        return None
    if not isinstance(error, str):
        raise ValidationError(f"error must be a string, not {type(error).__name__}")
    error = storable_text(error)
    if len(error) > MAX_ERROR_LENGTH:
        return error[: MAX_ERROR_LENGTH - 15] + "... [truncated]"
    return error


def check_purge_target(target: object) -> str:
    """Return a ``purge`` target: ``"ready"``, ``"dead"`` or ``"all"``."""
    if target not in ("ready", "dead", "all"):
        raise ValidationError(f"purge target must be 'ready', 'dead' or 'all', not {target!r}")
    return str(target)


def check_message_id(message_id: object) -> str:
    """Return ``message_id`` if it is a string (an id a store never made is not an error:
    it names no message)."""
    if not isinstance(message_id, str):
        raise ValidationError(f"a message id must be a string, not {type(message_id).__name__}")
    return message_id


def check_leases(leases: object) -> None:
    """Check the ``(message_id, lease_token or None)`` pairs of ``ack_many``.

    Raises:
        ValidationError: Not a sequence of such pairs, or more than :data:`MAX_BATCH`.
    """
    if isinstance(leases, str | bytes) or not isinstance(leases, Sequence):
        raise ValidationError("leases must be a sequence of (message_id, lease_token) pairs")
    if len(leases) > MAX_BATCH:
        raise ValidationError(f"at most {MAX_BATCH} leases per call, got {len(leases)}")
    for pair in leases:
        if (
            not isinstance(pair, tuple)
            or len(pair) != 2
            or not isinstance(pair[0], str)
            or not (pair[1] is None or isinstance(pair[1], str))
        ):
            raise ValidationError(
                f"each lease must be a (message_id, lease_token or None) tuple, not {pair!r}"
            )


def check_message_ids(message_ids: object) -> list[str]:
    """Return a sequence of message ids (strings) as a list, at most :data:`MAX_BATCH`."""
    if isinstance(message_ids, str | bytes) or not isinstance(message_ids, Sequence):
        raise ValidationError("message ids must be a sequence of strings")
    if len(message_ids) > MAX_BATCH:
        raise ValidationError(f"at most {MAX_BATCH} message ids per call, got {len(message_ids)}")
    if not all(isinstance(i, str) for i in message_ids):
        raise ValidationError("message ids must be strings")
    return list(message_ids)


# -- one call per operation, in the order every store checks ------------------


def check_put(
    queue: object, payload: object, delay: object, priority: object, dedup_key: object
) -> float:
    """Check the arguments of ``put``; return ``delay`` as float seconds."""
    check_queue_name(queue)
    check_payload(payload)
    seconds = check_delay(delay)
    check_priority(priority)
    check_dedup_key(dedup_key)
    return seconds


def check_put_many(
    queue: object, payloads: object, delay: object, priority: object
) -> tuple[list[bytes], float]:
    """Check the arguments of ``put_many``; return the payloads as a list and ``delay``."""
    check_queue_name(queue)
    items = check_batch(payloads)
    seconds = check_delay(delay)
    check_priority(priority)
    return items, seconds


def check_lease(
    queue: object,
    lease_timeout: object,
    leased_by: object,
    limit: object,
    max_deliveries: object = None,
) -> float:
    """Check the arguments of ``lease``; return ``lease_timeout`` as float seconds."""
    check_queue_name(queue)
    seconds = check_lease_timeout(lease_timeout)
    check_worker_id(leased_by)
    check_limit(limit)
    check_max_deliveries(max_deliveries)
    return seconds


def check_max_deliveries(max_deliveries: object) -> int | None:
    """Check a delivery cap: ``None`` (no cap) or an ``int`` of at least 1.

    Raises:
        ValidationError: Anything else (``bool`` is not an ``int`` here).
    """
    if max_deliveries is None:
        return None
    if (
        isinstance(max_deliveries, bool)
        or not isinstance(max_deliveries, int)
        or max_deliveries < 1
    ):
        raise ValidationError(f"max_deliveries must be None or an int >= 1, not {max_deliveries!r}")
    return max_deliveries
