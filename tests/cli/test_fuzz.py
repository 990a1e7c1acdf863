"""Random command lines through Typer's runner: never a traceback, always a documented status,
and a refused command leaves the store as it was.

``process`` and ``exec`` are left out: random arguments there would import
arbitrary modules or run arbitrary programs. Flags that wait (``--block``,
``--forever``, ``--watch``) are left out too.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from localqueue import PersistentQueue
from localqueue.cli import exit_codes
from localqueue.cli.app import app
from localqueue.registry import open_queue_store

DOCUMENTED = {getattr(exit_codes, name) for name in exit_codes.__all__}

COMMANDS: dict[tuple[str, ...], list[str]] = {
    ("queue", "add"): ["--value", "--raw", "--delay", "--priority", "--dedup-key"],
    ("queue", "size"): [],
    ("queue", "stats"): ["--interval", "--count"],
    ("queue", "inspect"): [],
    ("queue", "dead"): ["--limit"],
    ("queue", "requeue-dead"): ["--all"],
    ("queue", "pop"): ["--worker-id", "--lease-timeout", "--timeout"],
    ("queue", "ack"): ["--lease-token"],
    ("queue", "release"): ["--delay", "--error", "--lease-token"],
    ("queue", "dead-letter"): ["--error", "--lease-token"],
    ("queue", "purge"): ["--dead", "--all"],
    ("queue", "peek"): [],
    ("queues",): [],
    ("check",): [],
    ("config", "set"): [],
    ("config", "show"): [],
    ("config", "path"): [],
}
COMMON = ["--format", "-f", "--store", "--store-path", "--help", "--debug", "--bogus"]
ODD_VALUES = [
    "",
    "-1",
    "0",
    "1e309",
    "NaN",
    "inf",
    "nan",
    "[1, 2",
    '{"a": 1}',
    "lmdb:jobs",
    "memory:",
    "sqlite://host.db",
    "sqlit:///x.db",
    "table",
    "json",
    "yaml",
    "emails",
    "bad name!",
    "a" * 300,
    "\x00",
    "\udcff",
    "--",
]

tokens = st.one_of(
    st.sampled_from(ODD_VALUES),
    st.text(max_size=12),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


KNOWN_ID = "{id}"
"""Replaced by the id of a stored message."""


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    path = draw(st.sampled_from(sorted(COMMANDS)))
    flags = COMMANDS[path] + COMMON
    args: list[str] = list(path)
    names = st.sampled_from(["emails", "other", KNOWN_ID])
    args += draw(st.lists(st.one_of(names, tokens), max_size=3))
    for _ in range(draw(st.integers(0, 4))):
        args.append(draw(st.sampled_from(flags)))
        if draw(st.booleans()):
            args.append(draw(st.one_of(st.sampled_from(ODD_VALUES), tokens)))
    return args


def _snapshot(url: str) -> Any:
    store = open_queue_store(url)
    try:
        return sorted(
            (queue, tuple(sorted(m.as_dict().items(), key=str)))
            for queue in store.queues()
            for m in [*store.dead_letters(queue), *_live(store, queue)]
        )
    finally:
        store.close()


def _live(store: Any, queue: str) -> list[Any]:
    return [m for m in (store.peek(queue),) if m is not None] + [store.stats(queue)]


def _make_store(root: Path) -> tuple[str, str]:
    url = f"sqlite:///{root / 'jobs.db'}"
    with PersistentQueue("emails", url) as queue:
        first = queue.put({"n": 1}).id
        queue.put({"n": 2}, delay=3600)
        dead = queue.put({"n": 3}).id
        queue.dead_letter(dead, error="test")
    return url, first


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(drawn=command_lines())
# Known shapes of past defects, always tried first.
@example(drawn=["queue", "add", "emails", "--value", "NaN"])
@example(drawn=["queue", "peek", "other"])
@example(drawn=["queue", "stats", "emails", "--store", "lmdb:jobs"])
@example(drawn=["queue", "requeue-dead", "emails", KNOWN_ID])
def test_random_command_lines_are_handled(drawn: list[str]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        url, known_id = _make_store(root)
        args = [known_id if arg == KNOWN_ID else arg for arg in drawn]
        # A drawn store path stays inside the test's folder: no "/" can reach the root.
        args = [
            arg.replace("/", "_") if i and args[i - 1] in ("--store", "--store-path") else arg
            for i, arg in enumerate(args)
        ]
        # Any --store / --store-path the draw left out points at the store made above.
        if "--store" not in args and "--store-path" not in args:
            args += ["--store", url]
        before = _snapshot(url)
        result = CliRunner().invoke(
            app,
            args,
            env={"XDG_CONFIG_HOME": str(root / "xdg"), "LOCALQUEUE_DEBUG": ""},
            catch_exceptions=True,
        )
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            args,
            result.exception,
        )
        assert "Traceback" not in result.output, args
        assert result.exit_code in DOCUMENTED, (args, result.exit_code, result.output)
        if result.exit_code != exit_codes.SUCCESS:
            assert _snapshot(url) == before, args
        if result.exit_code == exit_codes.EMPTY_QUEUE:
            assert "error" not in result.stderr, args
        if "--help" not in args and "table" not in args:
            for line in result.stdout.splitlines():
                json.loads(line, parse_constant=_not_json)  # every line is strict JSON


def _not_json(name: str) -> None:
    raise AssertionError(f"{name} printed: not JSON")
