"""Errors: one line on stderr, a documented exit status, no secrets, tracebacks only on --debug."""

from __future__ import annotations

import pytest

from localqueue.cli import exit_codes

from .conftest import invoke, run_cli


def test_exit_codes_are_distinct() -> None:
    codes = [
        exit_codes.SUCCESS,
        exit_codes.INTERNAL_ERROR,
        exit_codes.USAGE_ERROR,
        exit_codes.EMPTY_QUEUE,
        exit_codes.NOT_FOUND,
        exit_codes.STORE_ERROR,
    ]
    assert len(set(codes)) == len(codes)
    assert (exit_codes.USAGE_ERROR, exit_codes.EMPTY_QUEUE) == (2, 3)
    assert (exit_codes.NOT_FOUND, exit_codes.STORE_ERROR) == (4, 5)


def test_unknown_scheme_is_one_line_naming_the_known_ones() -> None:
    result = invoke(["queue", "size", "emails", "--store", "sqlit:///x.db"])
    assert result.exit_code == exit_codes.USAGE_ERROR
    (line,) = result.stderr.splitlines()
    assert "Did you mean 'sqlite'" in line


@pytest.mark.parametrize(
    "url", ["postgresql://app:hunter2@127.0.0.1:1/jobs", "redis://:hunter2@127.0.0.1:1/0"]
)
def test_password_never_printed(url: str) -> None:
    result = invoke(["queue", "size", "emails", "--store", url])
    # 2 when the plugin is not installed, 5 when nothing answers on port 1.
    assert result.exit_code in (exit_codes.USAGE_ERROR, exit_codes.STORE_ERROR)
    assert len(result.stderr.splitlines()) == 1
    assert "hunter2" not in result.stderr + result.stdout


def test_bad_option_value_is_a_usage_error() -> None:
    result = invoke(["queue", "add", "emails", "--value", "1", "--delay", "-1"])
    assert result.exit_code == exit_codes.USAGE_ERROR


def test_store_failure_exits_5(tmp_path) -> None:
    not_a_store = tmp_path / "not-a-db.sqlite3"
    not_a_store.write_bytes(b"this is not a database file, just some text " * 100)
    result = invoke(["queue", "size", "emails", "--store-path", str(not_a_store)])
    assert result.exit_code == exit_codes.STORE_ERROR, result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_no_traceback_without_debug_and_one_with_it() -> None:
    quiet = run_cli(["queue", "inspect", "emails", "nope", "--store", "memory://"])
    assert quiet.returncode == exit_codes.NOT_FOUND
    assert quiet.stderr.strip() == "localqueue: error: no message 'nope' in queue 'emails'"
    loud = run_cli(["--debug", "queue", "inspect", "emails", "nope", "--store", "memory://"])
    assert loud.returncode != 0
    assert "Traceback" in loud.stderr
    assert "MessageNotFoundError" in loud.stderr


def test_no_arguments_shows_help() -> None:
    result = run_cli([])
    assert result.returncode == exit_codes.USAGE_ERROR
    assert "queue" in result.stdout + result.stderr


def test_version() -> None:
    result = run_cli(["--version"])
    assert result.returncode == 0
    assert result.stdout.startswith("localqueue ")


def test_debug_from_the_environment() -> None:
    loud = run_cli(
        ["queue", "inspect", "emails", "nope", "--store", "memory://"],
        env={"LOCALQUEUE_DEBUG": "1"},
    )
    assert "Traceback" in loud.stderr
