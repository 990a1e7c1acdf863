"""Small pieces every embedded store shares: ids, tokens and the common options."""

from __future__ import annotations

import os
import time

from localqueue.errors import UnknownSerializerError
from localqueue.serializers import DEFAULT_SERIALIZER, Serializer, get_serializer
from localqueue.urls import Option

__all__ = [
    "SERIALIZER_OPTION",
    "new_lease_token",
    "new_message_id",
    "new_message_ids",
    "parse_serializer",
]


def new_message_id() -> str:
    """A 32-hex-digit id that sorts by creation millisecond (UUIDv7-like).

    The random part comes from ``os.urandom`` so forked processes never repeat
    each other's ids.
    """
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


def new_message_ids(count: int) -> list[str]:
    """``count`` ids in the format of :func:`new_message_id`, with one clock read and one
    ``urandom`` call for the whole batch."""
    head = f"{time.time_ns() // 1_000_000:012x}"
    tail = os.urandom(10 * count).hex()
    return [head + tail[i : i + 20] for i in range(0, 20 * count, 20)]


def new_lease_token() -> str:
    """A fresh random proof of one lease."""
    return os.urandom(8).hex()


def parse_serializer(name: str) -> Serializer:
    """Option parser: a registered serializer's name to the serializer."""
    try:
        return get_serializer(name)
    except UnknownSerializerError as exc:
        raise ValueError(str(exc)) from None


SERIALIZER_OPTION: Option[Serializer] = Option(
    parse_serializer,
    get_serializer(DEFAULT_SERIALIZER),
    "codec for new values: msgpack (default), json, or a registered name",
)
