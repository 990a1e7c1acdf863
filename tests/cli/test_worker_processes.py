"""Child-process tests: ``exec``, signals during ``--forever``, the progress bar.

The README quickstart runs in ``test_readme_quickstart.py``.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from localqueue.cli import exit_codes

from .conftest import child_env, create_store, run_cli

PY = sys.executable


def wait_for(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.05)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def stores(store_url: str, retry_url: str) -> list[str]:
    return ["--store", store_url, "--retry-store", retry_url]


def add(stores: list[str], value: str) -> str:
    done = run_cli(["queue", "add", "emails", "--value", value, *stores])
    assert done.returncode == 0, done.stderr
    message_id: str = json.loads(done.stdout)["id"]
    return message_id


def test_exec_success_acks_and_passes_the_value_on_stdin(stores: list[str], isolated: Path) -> None:
    add(stores, '{"to": "user@example.com"}')
    copy = "import sys; open('received.json', 'w').write(sys.stdin.read())"
    done = run_cli(["queue", "exec", "emails", *stores, "--", PY, "-c", copy], cwd=isolated)
    assert done.returncode == 0, done.stderr
    outcome, summary = json_lines(done.stdout)
    assert outcome["status"] == "acked"
    assert summary["acked"] == 1
    assert json.loads((isolated / "received.json").read_text()) == {"to": "user@example.com"}


def test_exec_failure_records_command_status_and_output(stores: list[str]) -> None:
    message_id = add(stores, "1")
    script = "echo partial-output; echo something broke >&2; exit 7"
    done = run_cli(
        ["queue", "exec", "emails", "--max-tries", "2", *stores, "--", "sh", "-c", script]
    )
    assert done.returncode == 0, done.stderr
    outcome = json_lines(done.stdout)[0]
    assert outcome["status"] == "dead_lettered"
    assert outcome["tries"] == 2
    dead = run_cli(["queue", "inspect", "emails", message_id, *stores])
    error = json.loads(dead.stdout)["last_error"]
    assert "exited with 7" in error
    assert "sh -c" in error
    assert "stdout: partial-output" in error
    assert "stderr: something broke" in error


def test_exec_truncates_long_output(stores: list[str]) -> None:
    message_id = add(stores, "1")
    noisy = "import sys; sys.stderr.write('x' * 50000 + 'END'); sys.exit(1)"
    done = run_cli(["queue", "exec", "emails", "--max-tries", "1", *stores, "--", PY, "-c", noisy])
    assert done.returncode == 0, done.stderr
    dead = run_cli(["queue", "inspect", "emails", message_id, *stores])
    error = json.loads(dead.stdout)["last_error"]
    assert error.endswith("END")
    assert "[...]" in error
    assert len(error) < 5000


def test_exec_no_dead_letter_releases(stores: list[str]) -> None:
    message_id = add(stores, "1")
    done = run_cli(
        ["queue", "exec", "emails", "--max-tries", "1", "--no-dead-letter", *stores, "--", "false"]
    )
    assert done.returncode == 0, done.stderr
    shown = json.loads(run_cli(["queue", "inspect", "emails", message_id, *stores]).stdout)
    assert shown["state"] == "ready"
    assert "exited with 1" in shown["last_error"]


def test_exec_unknown_command_is_a_usage_error(stores: list[str]) -> None:
    add(stores, "1")
    done = run_cli(["queue", "exec", "emails", *stores, "--", "no-such-command-xyz"])
    assert done.returncode == exit_codes.USAGE_ERROR
    assert "no-such-command-xyz" in done.stderr
    assert len(done.stderr.splitlines()) == 1


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("command", ["process", "exec"])
def test_signal_during_forever_finishes_the_current_message_and_exits_0(
    stores: list[str], isolated: Path, signum: signal.Signals, command: str
) -> None:
    add(stores, '{"to": "slow@example.com", "seconds": 1.5}')
    if command == "process":
        handler = ["cli_handlers:slow_send"]
    else:
        handler = [
            "--",
            PY,
            "-c",
            "import cli_handlers, json, sys; cli_handlers.slow_send(json.load(sys.stdin))",
        ]
    worker = subprocess.Popen(
        [
            PY,
            "-m",
            "localqueue.cli",
            "queue",
            command,
            "emails",
            "--forever",
            "--block",
            "--worker-id",
            "worker-1",
            *stores,
            *handler,
        ],
        cwd=isolated,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(isolated / "started")
        worker.send_signal(signum)
        stdout, stderr = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    assert worker.returncode == 0, stderr
    outcome, summary = json_lines(stdout)
    assert outcome["status"] == "acked"
    assert summary["acked"] == 1
    sent = [json.loads(line) for line in (isolated / "outbox.jsonl").read_text().splitlines()]
    assert sent == [{"to": "slow@example.com", "seconds": 1.5}]
    stats = json.loads(run_cli(["queue", "stats", "emails", *stores]).stdout)
    assert stats["total"] == 0


def test_until_empty_shows_a_progress_bar_on_a_terminal(stores: list[str]) -> None:
    for n in range(3):
        add(stores, str(n))
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [
                PY,
                "-m",
                "localqueue.cli",
                "queue",
                "process",
                "emails",
                "cli_handlers:send_email",
                "--until-empty",
                *stores,
            ],
            stdout=subprocess.PIPE,
            stderr=follower,
            env=child_env({"COLUMNS": "100", "TERM": "xterm"}),
            text=True,
            timeout=60,
            check=False,
        )
        os.close(follower)
        follower = -1
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal has no writer left
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)
    assert done.returncode == 0
    assert json_lines(done.stdout)[-1]["acked"] == 3
    assert b"3/3" in shown


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_ends_a_watch_quietly(store_url: str, signum: signal.Signals) -> None:
    create_store(store_url)
    watcher = subprocess.Popen(
        [
            PY,
            "-m",
            "localqueue.cli",
            "queue",
            "stats",
            "emails",
            "--watch",
            "--interval",
            "0.1",
            "--store",
            store_url,
        ],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stdout is not None
        first = watcher.stdout.readline()
        watcher.send_signal(signum)
        rest, stderr = watcher.communicate(timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.communicate()
    assert watcher.returncode == 0, stderr
    assert stderr == ""
    assert json.loads(first)["queue"] == "emails"
    assert all(json.loads(line)["queue"] == "emails" for line in rest.splitlines())
