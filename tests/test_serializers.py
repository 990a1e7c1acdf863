"""Codecs: defaults, registration and errors."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from localqueue.errors import UnknownSerializerError, UnserializableValueError
from localqueue.serializers import (
    JsonSerializer,
    MsgpackSerializer,
    get_serializer,
    register_serializer,
    serializer_names,
)


def test_builtin_codecs_are_registered() -> None:
    assert {"msgpack", "json"} <= set(serializer_names())
    assert isinstance(get_serializer("msgpack"), MsgpackSerializer)
    assert isinstance(get_serializer("json"), JsonSerializer)


@pytest.mark.parametrize("name", ["msgpack", "json"])
def test_round_trip(name: str) -> None:
    codec = get_serializer(name)
    value = {"a": [1, 2.5, None, True, "ü"], "b": {"c": -(2**63)}}
    assert codec.loads(codec.dumps(value)) == value


def test_msgpack_keeps_bytes_and_json_refuses_them() -> None:
    assert get_serializer("msgpack").loads(get_serializer("msgpack").dumps(b"\x00")) == b"\x00"
    with pytest.raises(UnserializableValueError) as info:
        get_serializer("json").dumps(b"\x00")
    assert info.value.codec == "json"
    assert isinstance(info.value, TypeError)


@pytest.mark.parametrize("value", [object(), {1, 2}, {"k": object()}])
def test_unserialisable_values(value: Any) -> None:
    for name in ("json", "msgpack"):
        with pytest.raises(UnserializableValueError):
            get_serializer(name).dumps(value)


def test_json_refuses_non_finite_floats() -> None:
    with pytest.raises(UnserializableValueError):
        get_serializer("json").dumps(math.nan)


def test_msgpack_recovers_after_a_refused_value() -> None:
    codec = get_serializer("msgpack")
    with pytest.raises(UnserializableValueError):
        codec.dumps([1, object()])
    assert codec.loads(codec.dumps([1, 2])) == [1, 2]


def test_unknown_codec_names_the_registered_ones() -> None:
    with pytest.raises(UnknownSerializerError, match="msgpack") as info:
        get_serializer("pickle")
    assert info.value.codec == "pickle"


class Upper:
    name = "upper-json"

    def dumps(self, value: Any) -> bytes:
        return json.dumps(value).upper().encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data.decode().lower())


def test_custom_codec_registration_and_replacement_guard() -> None:
    codec = Upper()
    register_serializer(codec)
    register_serializer(codec)
    assert get_serializer("upper-json") is codec
    with pytest.raises(ValueError, match="already registered"):
        register_serializer(Upper())
    register_serializer(Upper(), replace=True)
    with pytest.raises(ValueError, match="name"):
        register_serializer(type("Nameless", (), {"name": ""})())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [{(1, 2): 3}, {"outer": {(1, ("nested", b"k")): [1]}}, {(): None, (True,): {(0,): 1}}],
)
def test_msgpack_reads_back_tuple_keys_it_accepted(value: Any) -> None:
    codec = get_serializer("msgpack")
    assert codec.loads(codec.dumps(value)) == value


def test_json_refuses_tuple_keys_at_dumps() -> None:
    with pytest.raises(UnserializableValueError):
        get_serializer("json").dumps({(1, 2): 3})


def test_a_tuple_keyed_value_round_trips_through_every_store(queue_store: Any) -> None:
    from localqueue import PersistentQueue

    queue = PersistentQueue("tuples", queue_store)
    queue.put({(1, 2): "pair", "plain": [1, 2]})
    assert queue.get_nowait() == {(1, 2): "pair", "plain": [1, 2]}
