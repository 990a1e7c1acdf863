"""What the CLI prints: effective states, named counts, valid JSON, one report per outcome."""

from __future__ import annotations

import json
import math
import os
import pty
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from localqueue import PersistentQueue
from localqueue.cli import exit_codes

from .conftest import HERE, child_env, create_store, invoke, lines, one, run_cli


@pytest.fixture(autouse=True)
def _handlers_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))


@pytest.fixture
def stores(store_url: str, retry_url: str) -> list[str]:
    return ["--store", store_url, "--retry-store", retry_url]


def _keys(rows: list[dict[str, Any]]) -> set[str]:
    return {key for row in rows for key in row}


# -- states and counts --------------------------------------------------------


def test_a_delayed_message_prints_as_delayed_everywhere(stores: list[str]) -> None:
    added = one(invoke(["queue", "add", "emails", "--value", "1", "--delay", "3600", *stores]))
    assert added["state"] == "delayed"
    assert one(invoke(["queue", "inspect", "emails", added["id"], *stores]))["state"] == "delayed"
    table = invoke(["queue", "inspect", "emails", added["id"], *stores, "--format", "table"])
    assert "delayed" in table.stdout
    ready = one(invoke(["queue", "add", "emails", "--value", "2", *stores]))
    assert ready["state"] == "ready"
    assert one(invoke(["queue", "peek", "emails", *stores]))["state"] == "ready"


def test_deliveries_and_tries_are_named_for_what_they_count(stores: list[str]) -> None:
    one(invoke(["queue", "add", "emails", "--value", "1", *stores]))
    worked = invoke(
        ["queue", "process", "emails", "cli_handlers:always_fails", "--max-tries", "3", *stores]
    )
    assert worked.exit_code == 0, worked.stderr
    outcome = lines(worked)[0]
    assert outcome["tries"] == 3  # the handler ran three times ...
    (dead,) = lines(invoke(["queue", "dead", "emails", *stores]))
    assert dead["deliveries"] == 1  # ... within one delivery
    assert dead["state"] == "dead"
    assert "attempts" not in _keys([*lines(worked), dead])
    table = invoke(["queue", "dead", "emails", *stores, "--format", "table"])
    assert "deliveries" in table.stdout
    assert "attempts" not in table.stdout


# -- small items --------------------------------------------------------------


def test_requeue_dead_of_a_message_that_is_not_dead_says_so(store_url: str) -> None:
    added = one(invoke(["queue", "add", "emails", "--value", "1", "--store", store_url]))
    result = invoke(["queue", "requeue-dead", "emails", added["id"], "--store", store_url])
    assert result.exit_code == exit_codes.NOT_FOUND
    assert "is ready, not dead" in result.stderr
    missing = invoke(["queue", "requeue-dead", "emails", "0" * 32, "--store", store_url])
    assert missing.exit_code == exit_codes.NOT_FOUND
    assert "no message" in missing.stderr


@pytest.mark.parametrize("command", [["pop"], ["peek"]])
def test_an_empty_queue_is_exit_3_not_an_error(store_url: str, command: list[str]) -> None:
    create_store(store_url)
    result = invoke(["queue", *command, "emails", "--store", store_url])
    assert result.exit_code == exit_codes.EMPTY_QUEUE
    assert result.stdout == ""
    assert result.stderr.strip() == "localqueue: queue 'emails' is empty"


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", '{"x": [1, NaN]}'])
def test_non_finite_numbers_are_refused(store_url: str, value: str) -> None:
    result = invoke(["queue", "add", "emails", "--value", value, "--store", store_url])
    assert result.exit_code == exit_codes.USAGE_ERROR
    assert "not JSON" in result.stderr
    create_store(store_url)
    assert one(invoke(["queue", "stats", "emails", "--store", store_url]))["total"] == 0


def test_non_finite_values_stored_by_the_library_print_as_valid_json(store_url: str) -> None:
    with PersistentQueue("emails", store_url) as queue:
        queue.put({"nan": math.nan, "big": [math.inf, -math.inf]})
    text = invoke(["queue", "peek", "emails", "--store", store_url]).stdout
    shown = json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name} printed"))
    assert shown["value"] == {"nan": "NaN", "big": ["Infinity", "-Infinity"]}


def test_debug_keeps_the_exit_status(tmp_path: Path) -> None:
    not_a_store = tmp_path / "not-a-db.sqlite3"
    not_a_store.write_bytes(b"this is not a database file, just some text " * 100)
    args = ["queue", "size", "emails", "--store-path", str(not_a_store)]
    loud = run_cli(["--debug", *args])
    assert loud.returncode == exit_codes.STORE_ERROR
    assert "Traceback" in loud.stderr
    missing = run_cli(["--debug", "queue", "stats", "q", "--store-path", str(tmp_path / "no.db")])
    assert missing.returncode == exit_codes.STORE_NOT_FOUND


@pytest.mark.parametrize(
    "command",
    [[], ["queue"], ["queue", "add"], ["queue", "process"], ["queue", "dead"], ["config", "init"]],
)
def test_help_shows_no_value_type_for_flags(command: list[str]) -> None:
    result = invoke([*command, "--help"])
    assert result.exit_code == 0
    assert "<bool>" not in result.stdout


def test_each_failure_is_reported_once(stores: list[str], tmp_path: Path) -> None:
    one(invoke(["queue", "add", "emails", "--value", "1", *stores]))
    done = run_cli(
        ["queue", "process", "emails", "cli_handlers:always_fails", "--max-tries", "2", *stores],
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.splitlines()[0])
    assert outcome["error"] == "ConnectionError: smtp down"
    assert "smtp down" not in done.stderr
    assert outcome["id"] not in done.stderr


# -- stdout carries the JSON lines, terminal or not ---------------------------

_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def _drain(fd: int) -> bytes:
    shown = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the terminal has no writer left
            return shown
        if not chunk:
            return shown
        shown += chunk


def _run_on(args: list[str], stdout_tty: bool, stderr_tty: bool) -> tuple[list[str], bytes]:
    """Run the CLI with stdout/stderr each a pipe or a terminal; returns (stdout lines, stderr)."""
    env = child_env({"COLUMNS": "100", "TERM": "xterm"})
    leader, follower = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "localqueue.cli", *args],
        stdout=follower if stdout_tty else subprocess.PIPE,
        stderr=follower if stderr_tty else subprocess.PIPE,
        env=env,
    )
    os.close(follower)
    drained: list[bytes] = []
    reader = threading.Thread(target=lambda: drained.append(_drain(leader)))
    reader.start()
    try:
        piped_out, piped_err = child.communicate(timeout=60)
        reader.join(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
        os.close(leader)
    on_tty = drained[0] if drained else b""
    assert child.returncode == 0, (on_tty, piped_err)
    out = on_tty if stdout_tty else piped_out
    err = on_tty if stderr_tty else piped_err
    text = _ANSI.sub(b"", out).replace(b"\r", b"\n").decode()
    json_lines = [line for line in text.splitlines() if line.startswith("{")]
    return json_lines, err


@pytest.mark.parametrize(
    ("stdout_tty", "stderr_tty"),
    [(False, False), (False, True), (True, False), (True, True)],
    ids=["pipes", "bar-on-stderr", "stdout-terminal", "one-terminal"],
)
def test_process_prints_one_line_per_message_then_the_summary_on_stdout(
    stores: list[str], stdout_tty: bool, stderr_tty: bool
) -> None:
    added = [one(invoke(["queue", "add", "emails", "--value", str(n), *stores])) for n in range(8)]
    ids = {message["id"] for message in added}
    args = ["queue", "process", "emails", "cli_handlers:send_email", "--until-empty", *stores]
    printed, err = _run_on(args, stdout_tty, stderr_tty)
    try:
        rows = [json.loads(line) for line in printed]
    except ValueError:
        pytest.fail(f"not JSON lines: {printed!r}")
    assert [row["event"] for row in rows] == ["message"] * 8 + ["summary"]
    assert {row["id"] for row in rows[:-1]} == ids
    assert rows[-1]["acked"] == 8
    if stderr_tty and not stdout_tty:
        totals = {int(total) for total in re.findall(rb"\d+/(\d+)", _ANSI.sub(b"", err))}
        assert totals == {8}, err
    if not stderr_tty:
        assert err == b""


def test_the_documented_exit_statuses_are_the_real_ones() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    section = text.split("## Exit status", 1)[1].split("\n## ", 1)[0]
    documented = {int(n) for n in re.findall(r"^\| (\d+) \|", section, re.MULTILINE)}
    real = {getattr(exit_codes, name) for name in exit_codes.__all__}
    assert documented == real


def test_a_reader_that_stops_early_is_not_an_error(store_url: str) -> None:
    with PersistentQueue("emails", store_url) as queue:
        for message in queue.put_many(list(range(3000))):
            queue.dead_letter(message.id, error="x" * 200)
    child = subprocess.Popen(
        [sys.executable, "-m", "localqueue.cli", "queue", "dead", "emails", "--store", store_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(),
    )
    assert child.stdout is not None
    assert child.stderr is not None
    assert json.loads(child.stdout.readline())["state"] == "dead"
    child.stdout.close()  # like `| head -1`
    stderr = child.stderr.read()
    child.stderr.close()
    assert child.wait(timeout=60) == exit_codes.SUCCESS, stderr
    assert stderr == b""
