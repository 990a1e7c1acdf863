"""The queue management commands, over every persistent engine."""

from __future__ import annotations

from typing import Any

import pytest

from localqueue.cli import exit_codes
from localqueue.registry import open_queue_store

from .conftest import create_store, invoke, lines, one


@pytest.fixture
def q(store_url: str):
    """Run ``localqueue queue CMD emails ARGS --store URL`` on an existing, empty store."""
    create_store(store_url)

    def run(command: str, *args: str, input: str | None = None):
        return invoke(["queue", command, "emails", *args, "--store", store_url], input=input)

    return run


def add(q: Any, *args: str, input: str | None = None) -> dict[str, Any]:
    return one(q("add", *args, input=input))


def test_add_json_value_and_inspect_it(q: Any) -> None:
    added = add(q, "--value", '{"to": "user@example.com"}')
    assert added["value"] == {"to": "user@example.com"}
    assert added["state"] == "ready"
    shown = one(q("inspect", added["id"]))
    assert shown["id"] == added["id"]
    assert shown["value"] == {"to": "user@example.com"}


def test_add_reads_stdin_when_no_value(q: Any) -> None:
    added = add(q, input='{"to": "user@example.com"}\n')
    assert added["value"] == {"to": "user@example.com"}


def test_add_raw_stores_the_string(q: Any) -> None:
    assert add(q, "--value", "user@example.com", "--raw")["value"] == "user@example.com"
    assert add(q, "--raw", input="from stdin\n")["value"] == "from stdin"


def test_add_invalid_json_stores_nothing(q: Any) -> None:
    result = q("add", "--value", "user@example.com")
    assert result.exit_code == exit_codes.USAGE_ERROR
    assert "--raw" in result.stderr
    assert one(q("size"))["size"] == 0


def test_add_delay_priority_and_dedup_key(q: Any) -> None:
    low = add(q, "--value", '"low"')
    high = add(q, "--value", '"high"', "--priority", "5")
    later = add(q, "--value", '"later"', "--delay", "3600")
    assert later["available_at"] > later["created_at"] + 3000
    assert one(q("peek"))["id"] == high["id"]
    assert one(q("stats"))["delayed"] == 1
    first = add(q, "--value", '"x"', "--dedup-key", "job-1")
    second = add(q, "--value", '"y"', "--dedup-key", "job-1")
    assert second["id"] == first["id"]
    assert second["value"] == "x"
    assert low["id"] != high["id"]


def test_size_and_stats(q: Any) -> None:
    for n in range(3):
        add(q, "--value", str(n))
    assert one(q("size")) == {"queue": "emails", "size": 3}
    popped = one(q("pop", "--worker-id", "w1"))
    one(q("dead-letter", popped["id"], "--error", "boom"))
    assert one(q("stats")) == {
        "queue": "emails",
        "ready": 2,
        "delayed": 0,
        "inflight": 0,
        "dead": 1,
        "total": 3,
    }


def test_pop_records_worker_and_returns_lease_token(q: Any) -> None:
    added = add(q, "--value", '{"n": 1}')
    popped = one(q("pop", "--worker-id", "worker-1", "--lease-timeout", "60"))
    assert popped["id"] == added["id"]
    assert popped["state"] == "inflight"
    assert popped["deliveries"] == 1
    assert popped["lease_token"]
    shown = one(q("inspect", added["id"]))
    assert shown["leased_by"] == "worker-1"
    assert "lease_token" not in shown


def test_pop_on_empty_queue_exits_3(q: Any) -> None:
    result = q("pop", "--worker-id", "w")
    assert result.exit_code == exit_codes.EMPTY_QUEUE
    assert result.stdout == ""
    assert "empty" in result.stderr


def test_peek_does_not_lease(q: Any) -> None:
    assert q("peek").exit_code == exit_codes.EMPTY_QUEUE
    added = add(q, "--value", "1")
    assert one(q("peek"))["id"] == added["id"]
    assert one(q("stats"))["ready"] == 1


def test_ack_deletes(q: Any) -> None:
    added = add(q, "--value", "1")
    one(q("pop"))
    assert one(q("ack", added["id"])) == {"queue": "emails", "id": added["id"], "acked": True}
    assert q("inspect", added["id"]).exit_code == exit_codes.NOT_FOUND
    assert q("ack", added["id"]).exit_code == exit_codes.NOT_FOUND


def test_ack_with_a_stale_lease_token_exits_4_and_keeps_the_message(q: Any) -> None:
    added = add(q, "--value", "1")
    first = one(q("pop", "--lease-timeout", "60"))
    one(q("release", added["id"]))
    one(q("pop", "--lease-timeout", "60"))
    result = q("ack", added["id"], "--lease-token", first["lease_token"])
    assert result.exit_code == exit_codes.NOT_FOUND
    assert "no longer held" in result.stderr
    assert one(q("inspect", added["id"]))["state"] == "inflight"


def test_release_with_delay_and_error(q: Any) -> None:
    added = add(q, "--value", "1")
    popped = one(q("pop"))
    one(
        q(
            "release",
            added["id"],
            "--delay",
            "3600",
            "--error",
            "smtp down",
            "--lease-token",
            popped["lease_token"],
        )
    )
    shown = one(q("inspect", added["id"]))
    assert shown["state"] == "delayed"
    assert shown["last_error"] == "smtp down"
    assert shown["available_at"] > shown["created_at"] + 3000
    assert q("pop").exit_code == exit_codes.EMPTY_QUEUE


def test_dead_letter_list_and_requeue_one(q: Any) -> None:
    a = add(q, "--value", '"a"')
    b = add(q, "--value", '"b"')
    one(q("dead-letter", a["id"], "--error", "bad address"))
    one(q("dead-letter", b["id"]))
    dead = lines(q("dead"))
    assert [m["id"] for m in dead] == [a["id"], b["id"]]
    assert dead[0]["last_error"] == "bad address"
    assert len(lines(q("dead", "--limit", "1"))) == 1
    assert one(q("requeue-dead", a["id"])) == {"queue": "emails", "requeued": 1}
    requeued = one(q("inspect", a["id"]))
    assert requeued["state"] == "ready"
    assert requeued["deliveries"] == 0
    assert q("requeue-dead", a["id"]).exit_code == exit_codes.NOT_FOUND


def test_requeue_dead_all(q: Any) -> None:
    for n in range(3):
        one(q("dead-letter", add(q, "--value", str(n))["id"]))
    assert one(q("requeue-dead", "--all"))["requeued"] == 3
    assert lines(q("dead")) == []


def test_requeue_dead_needs_exactly_one_of_id_and_all(q: Any) -> None:
    assert q("requeue-dead").exit_code == exit_codes.USAGE_ERROR
    assert q("requeue-dead", "some-id", "--all").exit_code == exit_codes.USAGE_ERROR


def test_purge_targets(q: Any) -> None:
    for n in range(3):
        add(q, "--value", str(n))
    one(q("dead-letter", one(q("pop"))["id"]))
    leased = one(q("pop"))
    assert one(q("purge")) == {"queue": "emails", "target": "ready", "purged": 1}
    assert one(q("purge", "--dead"))["purged"] == 1
    assert one(q("inspect", leased["id"]))["state"] == "inflight"
    assert one(q("purge", "--all"))["purged"] == 1
    assert one(q("stats"))["total"] == 0
    assert q("purge", "--dead", "--all").exit_code == exit_codes.USAGE_ERROR


def test_queues_lists_each_queue_with_stats(store_url: str) -> None:
    for name in ("b-queue", "a-queue", "a-queue"):
        one(invoke(["queue", "add", name, "--value", "1", "--store", store_url]))
    listed = lines(invoke(["queues", "--store", store_url]))
    assert [row["queue"] for row in listed] == ["a-queue", "b-queue"]
    assert listed[0]["ready"] == 2
    assert listed[0]["total"] == 2


def test_queues_on_an_empty_store_prints_nothing(store_url: str) -> None:
    create_store(store_url)
    result = invoke(["queues", "--store", store_url])
    assert result.exit_code == 0
    assert result.stdout == ""


def test_table_format_renders_for_people(q: Any) -> None:
    added = add(q, "--value", '{"to": "user@example.com"}')
    shown = q("inspect", added["id"], "--format", "table")
    assert shown.exit_code == 0
    assert added["id"] in shown.stdout
    assert "user@example.com" in shown.stdout
    assert "{" not in shown.stdout.splitlines()[0]
    one(q("dead-letter", added["id"], "--error", "boom"))
    listed = q("dead", "--format", "table")
    assert "boom" in listed.stdout


def test_invalid_queue_name_is_a_usage_error(store_url: str) -> None:
    result = invoke(["queue", "size", "bad name!", "--store", store_url])
    assert result.exit_code == exit_codes.USAGE_ERROR
    assert "invalid queue name" in result.stderr


def test_pop_block_waits_then_exits_3_after_its_timeout(q: Any) -> None:
    result = q("pop", "--block", "--timeout", "0.2")
    assert result.exit_code == exit_codes.EMPTY_QUEUE
    added = add(q, "--value", "1")
    assert one(q("pop", "--block", "--timeout", "5"))["id"] == added["id"]


def test_table_shows_values_literally(q: Any) -> None:
    added = add(q, "--value", "[bold]not markup[/bold]", "--raw")
    shown = q("inspect", added["id"], "--format", "table")
    assert "[bold]not markup[/bold]" in shown.stdout


def test_the_url_serializer_encodes_what_add_stores(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path}/codec.db?serializer=json"
    added = one(invoke(["queue", "add", "emails", "--value", '{"n": 1}', "--store", url]))
    with open_queue_store(f"sqlite:///{tmp_path}/codec.db") as store:
        stored = store.inspect("emails", added["id"])
    assert stored is not None
    assert (stored.codec, stored.payload) == ("json", b'{"n":1}')
