"""``--watch``: JSON lines that stream, or a live table."""

from __future__ import annotations

from .conftest import create_store, invoke, lines, one


def test_stats_watch_prints_one_line_per_refresh(store_url: str) -> None:
    one(invoke(["queue", "add", "emails", "--value", "1", "--store", store_url]))
    result = invoke(
        [
            "queue",
            "stats",
            "emails",
            "--watch",
            "--interval",
            "0.05",
            "--count",
            "3",
            "--store",
            store_url,
        ]
    )
    assert result.exit_code == 0, result.stderr
    refreshes = lines(result)
    assert len(refreshes) == 3
    assert all(r["ready"] == 1 and r["queue"] == "emails" for r in refreshes)
    assert refreshes[0]["time"] <= refreshes[-1]["time"]


def test_dead_watch_streams_each_dead_letter_once(store_url: str) -> None:
    for n in range(2):
        added = one(invoke(["queue", "add", "emails", "--value", str(n), "--store", store_url]))
        one(invoke(["queue", "dead-letter", "emails", added["id"], "--store", store_url]))
    result = invoke(
        [
            "queue",
            "dead",
            "emails",
            "--watch",
            "--interval",
            "0.05",
            "--count",
            "3",
            "--store",
            store_url,
        ]
    )
    assert result.exit_code == 0, result.stderr
    assert [m["value"] for m in lines(result)] == [0, 1]


def test_watch_table_renders_a_live_table(store_url: str) -> None:
    create_store(store_url)
    result = invoke(
        [
            "queue",
            "stats",
            "emails",
            "--watch",
            "--count",
            "2",
            "--interval",
            "0.05",
            "--format",
            "table",
            "--store",
            store_url,
        ]
    )
    assert result.exit_code == 0, result.stderr
    assert "inflight" in result.stdout
    dead = invoke(
        [
            "queue",
            "dead",
            "emails",
            "--watch",
            "--count",
            "1",
            "--format",
            "table",
            "--store",
            store_url,
        ]
    )
    assert "0 dead letter(s)" in dead.stdout
