"""``localqueue check`` and ``localqueue repair`` on real files with planted damage."""

from __future__ import annotations

from localqueue import MessageState, PersistentQueue
from localqueue.cli import exit_codes
from localqueue.protocols import DamageInjectable
from localqueue.registry import open_queue_store

from .conftest import invoke, lines


def _damaged(store_url: str) -> str:
    """Two messages in queue ``q``; the first one's record damaged. Returns its id."""
    with PersistentQueue("q", store_url) as queue:
        bad = queue.put_many(["bad", "good"])[0].id
    store = open_queue_store(store_url)
    try:
        assert isinstance(store, DamageInjectable)
        store.damage_record("q", bad, "record")
    finally:
        store.close()
    return bad


def test_check_of_a_healthy_store_exits_zero(store_url: str) -> None:
    PersistentQueue("q", store_url).put("fine")
    result = invoke(["check", "--store", store_url])
    assert result.exit_code == exit_codes.SUCCESS, result.stderr
    assert lines(result) == [{"store": store_url, "healthy": True, "problems": 0}]


def test_check_names_the_damaged_message_and_changes_nothing(store_url: str) -> None:
    bad = _damaged(store_url)
    result = invoke(["check", "--store", store_url])
    assert result.exit_code == exit_codes.DAMAGED
    *problems, summary = lines(result)
    assert summary["healthy"] is False
    assert summary["problems"] == len(problems) >= 1
    assert any(bad in p["detail"] for p in problems)
    assert "problem(s) found" in result.stderr
    # Checking twice finds the same: the check changed nothing.
    assert lines(invoke(["check", "--store", store_url]))[:-1] == problems


def test_repair_moves_the_damaged_message_aside_and_keeps_the_rest(store_url: str) -> None:
    bad = _damaged(store_url)
    result = invoke(["repair", "--store", store_url])
    assert result.exit_code == exit_codes.SUCCESS, result.stderr
    *repairs, summary = lines(result)
    assert summary == {"store": store_url, "healthy": True, "problems": 0, "repairs": len(repairs)}
    assert any(bad in r["detail"] for r in repairs)
    with PersistentQueue("q", store_url) as queue:
        dead = queue.store.inspect("q", bad)
        assert dead is not None
        assert dead.state is MessageState.DEAD
        assert dead.last_error is not None
        assert "damaged" in dead.last_error.lower()
        assert queue.get_nowait() == "good"
    again = invoke(["repair", "--store", store_url])
    assert lines(again) == [{"store": store_url, "healthy": True, "problems": 0, "repairs": 0}]


def test_stores_without_the_ability_say_so() -> None:
    for command in ("check", "repair"):
        result = invoke([command, "--store", "memory://"])
        if command == "check" and result.exit_code == exit_codes.SUCCESS:
            continue  # the memory store audits its own indexes
        assert result.exit_code == exit_codes.USAGE_ERROR
        assert "cannot" in result.stderr


def test_passwords_in_the_url_are_not_printed() -> None:
    result = invoke(["check", "--store", "redis://user:s3cret@127.0.0.1:1/0?connect_timeout=0.2"])
    assert "s3cret" not in result.stdout + result.stderr
    assert result.exit_code == exit_codes.STORE_ERROR
