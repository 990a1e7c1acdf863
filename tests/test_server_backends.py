"""The layers above the protocols (queue, worker, retry, CLI) run unchanged on the
server-backed backends: PostgreSQL and Redis, chosen by URL alone.

Each test gets its own schema or key prefix and removes it afterwards. When a
backend package is missing or its server does not answer, the tests skip (and
fail under ``LOCALQUEUE_REQUIRE_SERVICES=1``, as in CI).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tenacity import RetryError, stop_after_attempt

from localqueue import (
    MessageState,
    PersistentQueue,
    PersistentRetryExhausted,
    PersistentWorkerConfig,
    Worker,
)
from localqueue.registry import open_attempt_store
from localqueue.retry import persistent_retry

pytestmark = pytest.mark.services


def test_queue_lifecycle(server_url: str) -> None:
    with PersistentQueue("emails", server_url) as queue:
        queue.put({"to": "a@example.com"}, priority=1)
        queue.put({"to": "b@example.com"})
        first = queue.get_message(leased_by="host-a")
        assert first.value == {"to": "a@example.com"}
        queue.release(first, error=ConnectionError("smtp down"))
        again = queue.get_message()
        assert again.id == first.id
        assert again.attempts == 2
        queue.dead_letter(again, error="gave up")
        assert queue.dead_letters()[0].last_error == "gave up"
        assert queue.requeue_all_dead() == 1
        leased = queue.get_messages(2)
        assert queue.ack_many(leased) == 2
        assert queue.stats().total == 0


def test_worker_retries_acks_and_dead_letters(server_url: str) -> None:
    failures: dict[str, int] = {}

    def handler(job: dict[str, str]) -> str:
        failures[job["name"]] = failures.get(job["name"], 0) + 1
        if job["name"] == "flaky" and failures["flaky"] < 2:
            raise ConnectionError("first try fails")
        if job["name"] == "broken":
            raise ValueError("always fails")
        return job["name"]

    with PersistentQueue("jobs", server_url) as queue:
        queue.put_many([{"name": "ok"}, {"name": "flaky"}, {"name": "broken"}])
        config = PersistentWorkerConfig(max_tries=3, store=server_url, heartbeat_interval=0)
        worker = Worker(queue, handler, config=config, handle_signals=False)
        stats = worker.run(until_empty=True)
        assert (stats.acked, stats.dead_lettered) == (2, 1)
        dead = queue.dead_letters()
        assert len(dead) == 1
        assert dead[0].state is MessageState.DEAD
        assert dead[0].last_error is not None
        assert "always fails" in dead[0].last_error
        assert failures == {"ok": 1, "flaky": 2, "broken": 3}


def test_retry_budget_persists_across_retryers(server_url: str) -> None:
    calls: list[int] = []

    def make() -> object:
        @persistent_retry(key="export:1", store=server_url, stop=stop_after_attempt(2))
        def export() -> None:
            calls.append(1)
            raise ConnectionError("down")

        return export

    first = make()
    with pytest.raises(RetryError):
        first()  # type: ignore[operator]
    assert len(calls) == 2
    restarted = make()  # a new process would build the same decorator again
    with pytest.raises(PersistentRetryExhausted):
        restarted()  # type: ignore[operator]
    assert len(calls) == 2
    store = open_attempt_store(server_url)
    record = store.get_record("export:1")
    store.close()
    assert record is not None
    assert record.exhausted


def test_cli_over_the_server(
    server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from localqueue.cli.app import app

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.stdout

    store = ["--store", server_url, "--retry-store", server_url]
    run("queue", "add", "numbers", "--value", "4", *store)
    run("queue", "add", "numbers", "--value", "-1", *store)
    assert json.loads(run("queue", "stats", "numbers", *store))["ready"] == 2
    run("queue", "process", "numbers", "math:sqrt", "--until-empty", "--max-tries", "2", *store)
    dead = [json.loads(line) for line in run("queue", "dead", "numbers", *store).splitlines()]
    assert len(dead) == 1
    assert "math domain error" in dead[0]["last_error"]
    run("queue", "requeue-dead", "numbers", "--all", *store)
    assert json.loads(run("queue", "stats", "numbers", *store))["ready"] == 1
    assert "numbers" in run("queues", *store)
