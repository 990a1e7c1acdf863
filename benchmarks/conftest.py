"""Fixtures of the pytest-benchmark suites: every store, serializer, payload and depth.

Run with ``python -m pytest benchmarks`` (never part of the default test run:
``testpaths`` only lists ``tests``). Options:

* ``--bench-million``: also run at a queue depth of 1 million messages (100 B payloads).
* ``--bench-round-scale X``: multiply every benchmark's round count by ``X``.
* ``--benchmark-disable``: run each benchmark once, untimed (a smoke test).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_stores import TARGETS, StoreTarget, payload_value, unavailable_reason

from localqueue import PersistentQueue, open_queue_store

QUEUE = "bench"
FILL_CHUNK = 1_000
SERIALIZERS = ("msgpack", "json")
MILLION = 1_000_000

# (payload bytes, queue depth). The million-deep queue uses 100 B payloads only:
# 1 million 64 KiB messages would be 64 GiB per store and serializer.
SHAPES = [
    pytest.param((100, 1_000), id="100B-depth1k"),
    pytest.param((4_096, 1_000), id="4KiB-depth1k"),
    pytest.param((65_536, 1_000), id="64KiB-depth1k"),
    pytest.param(
        (100, MILLION),
        id="100B-depth1M",
        marks=[pytest.mark.million, pytest.mark.timeout(4 * 3600)],
    ),
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("localqueue benchmarks")
    group.addoption(
        "--bench-million",
        action="store_true",
        default=False,
        help="also benchmark at a queue depth of 1 million messages (slow to fill)",
    )
    group.addoption(
        "--bench-round-scale",
        type=float,
        default=1.0,
        help="multiply the number of timed rounds of every benchmark",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "million: a queue filled with 1 million messages")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--bench-million"):
        return
    skip = pytest.mark.skip(reason="1 million messages deep: pass --bench-million")
    for item in items:
        if "million" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module", params=TARGETS, ids=lambda t: t.label)
def target(request: pytest.FixtureRequest) -> StoreTarget:
    """A store configuration; skipped when its backend or server is missing."""
    store_target: StoreTarget = request.param
    reason = unavailable_reason(store_target)
    if reason is not None:
        pytest.skip(reason)
    return store_target


@pytest.fixture(scope="module", params=SERIALIZERS)
def serializer(request: pytest.FixtureRequest) -> str:
    """The store's serializer name."""
    name: str = request.param
    return name


@pytest.fixture(scope="module", params=SHAPES)
def shape(request: pytest.FixtureRequest) -> tuple[int, int]:
    """(payload size in bytes, queue depth)."""
    value: tuple[int, int] = request.param
    return value


@pytest.fixture(scope="module")
def filled_queue(
    target: StoreTarget,
    serializer: str,
    shape: tuple[int, int],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PersistentQueue]:
    """A queue holding ``depth`` messages; each benchmark keeps that depth constant."""
    size, depth = shape
    url = target.url(tmp_path_factory.mktemp(target.label), serializer)
    store = open_queue_store(url)
    queue = PersistentQueue(QUEUE, store)
    try:
        value = payload_value(size)
        for start in range(0, depth, FILL_CHUNK):
            queue.put_many([value] * min(FILL_CHUNK, depth - start))
        yield queue
    finally:
        store.close()
        target.cleanup(url)


@pytest.fixture
def round_scale(request: pytest.FixtureRequest) -> float:
    """The ``--bench-round-scale`` factor."""
    scale: float = request.config.getoption("--bench-round-scale")
    return scale
