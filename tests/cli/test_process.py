"""``queue process QUEUE module:function`` through Typer's runner."""

from __future__ import annotations

from pathlib import Path

import pytest

from localqueue.cli import exit_codes
from localqueue.registry import open_attempt_store

from . import cli_handlers
from .conftest import HERE, create_store, invoke, lines, one


@pytest.fixture(autouse=True)
def importable_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))


@pytest.fixture
def stores(store_url: str, retry_url: str) -> list[str]:
    return ["--store", store_url, "--retry-store", retry_url]


def add(stores: list[str], value: str) -> str:
    added: str = one(invoke(["queue", "add", "emails", "--value", value, *stores]))["id"]
    return added


def test_processes_one_message_by_default(stores: list[str]) -> None:
    first = add(stores, '{"to": "a@example.com"}')
    add(stores, '{"to": "b@example.com"}')
    result = invoke(["queue", "process", "emails", "cli_handlers:send_email", *stores])
    assert result.exit_code == 0, result.stderr
    message, summary = lines(result)
    assert {k: message[k] for k in ("event", "queue", "id", "status", "tries", "error")} == {
        "event": "message",
        "queue": "emails",
        "id": first,
        "status": "acked",
        "tries": 1,
        "error": None,
    }
    assert summary["event"] == "summary"
    assert summary["processed"] == summary["acked"] == 1
    assert cli_handlers.sent() == [{"to": "a@example.com"}]
    assert one(invoke(["queue", "size", "emails", *stores]))["size"] == 1


def test_until_empty_processes_everything(stores: list[str]) -> None:
    for n in range(5):
        add(stores, f'{{"n": {n}}}')
    result = invoke(
        ["queue", "process", "emails", "cli_handlers:send_email", "--until-empty", *stores]
    )
    assert result.exit_code == 0, result.stderr
    assert lines(result)[-1]["acked"] == 5
    assert sorted(job["n"] for job in cli_handlers.sent()) == [0, 1, 2, 3, 4]
    assert one(invoke(["queue", "stats", "emails", *stores]))["total"] == 0


def test_concurrency(stores: list[str]) -> None:
    for n in range(6):
        add(stores, str(n))
    result = invoke(
        [
            "queue",
            "process",
            "emails",
            "cli_handlers:send_email",
            "--until-empty",
            "--concurrency",
            "3",
            *stores,
        ]
    )
    assert result.exit_code == 0, result.stderr
    assert sorted(cli_handlers.sent()) == [0, 1, 2, 3, 4, 5]


def test_failing_handler_is_dead_lettered_after_max_tries(
    stores: list[str], retry_url: str
) -> None:
    message_id = add(stores, '{"to": "a@example.com"}')
    result = invoke(
        [
            "queue",
            "process",
            "emails",
            "cli_handlers:always_fails",
            "--max-tries",
            "3",
            "--worker-id",
            "worker-1",
            *stores,
        ]
    )
    assert result.exit_code == 0, result.stderr
    outcome = lines(result)[0]
    assert outcome["status"] == "dead_lettered"
    assert outcome["tries"] == 3
    assert outcome["error"] == "ConnectionError: smtp down"
    (dead,) = lines(invoke(["queue", "dead", "emails", *stores]))
    assert dead["id"] == message_id
    assert dead["last_error"] == "ConnectionError: smtp down"
    assert dead["leased_by"] == "worker-1"
    attempts = open_attempt_store(retry_url)
    try:
        record = attempts.get_record(message_id)
    finally:
        attempts.close()
    assert record is not None
    assert record.attempts == 3


def test_no_dead_letter_releases_with_delay(stores: list[str]) -> None:
    message_id = add(stores, "1")
    result = invoke(
        [
            "queue",
            "process",
            "emails",
            "cli_handlers:always_fails",
            "--max-tries",
            "1",
            "--no-dead-letter",
            "--release-delay",
            "3600",
            *stores,
        ]
    )
    assert result.exit_code == 0, result.stderr
    assert lines(result)[0]["status"] == "released"
    shown = one(invoke(["queue", "inspect", "emails", message_id, *stores]))
    assert shown["state"] == "delayed"
    assert shown["last_error"] == "ConnectionError: smtp down"
    assert one(invoke(["queue", "stats", "emails", *stores]))["delayed"] == 1


def test_empty_queue_exits_3_in_single_message_mode(stores: list[str]) -> None:
    create_store(stores[1])
    result = invoke(["queue", "process", "emails", "cli_handlers:send_email", *stores])
    assert result.exit_code == exit_codes.EMPTY_QUEUE
    assert result.stdout == ""
    until_empty = invoke(
        ["queue", "process", "emails", "cli_handlers:send_email", "--until-empty", *stores]
    )
    assert until_empty.exit_code == 0
    assert lines(until_empty)[-1]["processed"] == 0


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        ("no_colon", "module:function"),
        ("no_such_module_xyz:run", "cannot import"),
        ("cli_handlers:missing", "no attribute"),
        ("cli_handlers:OUTBOX", "not callable"),
    ],
)
def test_bad_handler_is_a_usage_error(stores: list[str], handler: str, message: str) -> None:
    add(stores, "1")
    result = invoke(["queue", "process", "emails", handler, *stores])
    assert result.exit_code == exit_codes.USAGE_ERROR
    assert message in result.stderr
    assert one(invoke(["queue", "size", "emails", *stores]))["size"] == 1


def test_forever_and_until_empty_conflict(stores: list[str]) -> None:
    result = invoke(
        [
            "queue",
            "process",
            "emails",
            "cli_handlers:send_email",
            "--forever",
            "--until-empty",
            *stores,
        ]
    )
    assert result.exit_code == exit_codes.USAGE_ERROR


def test_table_format(stores: list[str]) -> None:
    message_id = add(stores, "1")
    result = invoke(
        ["queue", "process", "emails", "cli_handlers:send_email", "-f", "table", *stores]
    )
    assert result.exit_code == 0, result.stderr
    assert message_id in result.stdout
    assert "acked" in result.stdout


def test_retry_store_comes_from_the_settings_file(store_url: str, isolated: Path) -> None:
    retry_path = isolated / "from-settings.sqlite3"
    invoke(["config", "init", "--store", store_url, "--retry-store-path", str(retry_path)])
    one(invoke(["queue", "add", "emails", "--value", "1"]))
    result = invoke(["queue", "process", "emails", "cli_handlers:send_email"])
    assert result.exit_code == 0, result.stderr
    assert retry_path.exists()
