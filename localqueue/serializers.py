"""Value codecs: msgpack (the default) and JSON, plus any you register.

Every stored message records the name of the codec that wrote it, so a
reader configured with another default still decodes it. Pickle is never a
default and is not shipped: a queue is a boundary between processes that
should not have to trust each other's code.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Protocol, runtime_checkable

import msgpack

from localqueue.errors import UnknownSerializerError, UnserializableValueError

__all__ = [
    "DEFAULT_SERIALIZER",
    "JsonSerializer",
    "MsgpackSerializer",
    "Serializer",
    "get_serializer",
    "register_serializer",
    "serializer_names",
]

DEFAULT_SERIALIZER = "msgpack"


@runtime_checkable
class Serializer(Protocol):
    """Turns values into bytes and back.

    ``name`` is stored with every message, so it must stay stable once data
    has been written with it.
    """

    name: str

    def dumps(self, value: Any) -> bytes:
        """Encode ``value``.

        Raises:
            UnserializableValueError: The value has a type this codec cannot encode.
        """
        ...

    def loads(self, data: bytes) -> Any:
        """Decode bytes written by :meth:`dumps`; raise any exception on malformed input."""
        ...


class MsgpackSerializer:
    """msgpack: compact, fast, and keeps ``bytes`` distinct from ``str``.

    Tuples come back as lists, as with JSON, except as dict keys, where they stay tuples.
    """

    name = "msgpack"

    def __init__(self) -> None:
        # One Packer per thread: Packer keeps an internal buffer and is not thread-safe.
        self._local = threading.local()

    def dumps(self, value: Any) -> bytes:
        """Encode ``value`` with msgpack."""
        packer = getattr(self._local, "packer", None)
        if packer is None:
            packer = msgpack.Packer(use_bin_type=True, datetime=False)
            self._local.packer = packer
        try:
            data: bytes = packer.pack(value)
        except (TypeError, ValueError, OverflowError) as exc:
            packer.reset()
            raise UnserializableValueError(self.name, str(exc)) from exc
        return data

    def loads(self, data: bytes) -> Any:
        """Decode msgpack bytes."""
        try:
            return msgpack.unpackb(data, raw=False, strict_map_key=False)
        except TypeError:
            # A tuple used as a dict key is packed as an array, which decodes to an
            # unhashable list; decode such maps again with those keys as tuples, so
            # every value dumps() accepts reads back. The common path stays hook-free.
            return msgpack.unpackb(
                data, raw=False, strict_map_key=False, object_pairs_hook=_map_with_tuple_keys
            )


def _as_key(key: Any) -> Any:
    return tuple(_as_key(k) for k in key) if isinstance(key, list) else key


def _map_with_tuple_keys(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    return {_as_key(key): value for key, value in pairs}


class JsonSerializer:
    """JSON: human-readable payloads; ``bytes`` and non-finite floats are refused."""

    name = "json"

    def dumps(self, value: Any) -> bytes:
        """Encode ``value`` as compact UTF-8 JSON."""
        try:
            return json.dumps(
                value, ensure_ascii=False, allow_nan=False, separators=(",", ":")
            ).encode()
        except (TypeError, ValueError, RecursionError) as exc:
            raise UnserializableValueError(self.name, str(exc)) from exc

    def loads(self, data: bytes) -> Any:
        """Decode UTF-8 JSON bytes."""
        return json.loads(data)


_registry: dict[str, Serializer] = {}
_registry_lock = threading.Lock()


def register_serializer(serializer: Serializer, *, replace: bool = False) -> None:
    """Make ``serializer`` available by its name to every store in this process.

    Args:
        serializer: An object with ``name``, ``dumps`` and ``loads``.
        replace: Allow replacing a different serializer registered under the same name.

    Raises:
        ValueError: The name is taken by another serializer and ``replace`` is false,
            or the name is empty.
    """
    name = getattr(serializer, "name", None)
    if not isinstance(name, str) or not name or len(name) > 32:
        raise ValueError("a serializer needs a non-empty 'name' of at most 32 characters")
    with _registry_lock:
        current = _registry.get(name)
        if current is not None and current is not serializer and not replace:
            raise ValueError(f"a different serializer is already registered as {name!r}")
        _registry[name] = serializer


def get_serializer(name: str | Serializer) -> Serializer:
    """Return the serializer registered as ``name`` (a serializer object is returned as is).

    Raises:
        UnknownSerializerError: Nothing is registered under that name.
    """
    if not isinstance(name, str):
        return name
    try:
        return _registry[name]
    except KeyError:
        raise UnknownSerializerError(name, _registry) from None


def serializer_names() -> list[str]:
    """The names of every registered serializer, sorted."""
    return sorted(_registry)


register_serializer(MsgpackSerializer())
register_serializer(JsonSerializer())
