"""The campaigns' audit catches what it counts: planted logs with a double lease, a lost
message, a double ack and a half batch are each reported, and clean logs are not."""

from __future__ import annotations

from pathlib import Path

import pytest

from localqueue.registry import open_queue_store
from localqueue.testing.campaigns import (
    CLOCK_MARGIN,
    CampaignReport,
    audit,
    run_connection_kills,
    run_contention,
    run_damage,
    store_files,
)
from localqueue.testing.campaigns.__main__ import main

T = 1_000_000.0


def lease(mid: str, token: str, who: str, at: float, until: float, payload: str) -> str:
    return f"LEASE {mid} {token} {who} {at:.6f} {until:.6f} 1 {payload}\n"


def ack(mid: str, token: str, at: float, payload: str, verdict: str = "ACK") -> str:
    line = f"{mid} {token} {at:.6f} {payload}"
    result = f"{verdict} {line} {at + 0.002:.6f}\n" if verdict else ""
    return f"ACKING {line}\n{result}"


def planted(tmp_path: Path, puts: str, *consumers: str) -> CampaignReport:
    (tmp_path / "put-p1.log").write_text(puts)
    for i, text in enumerate(consumers):
        (tmp_path / f"lease-c{i}.log").write_text(text)
    return audit(CampaignReport("crash", "planted"), tmp_path)


def test_clean_logs_pass(tmp_path: Path) -> None:
    report = planted(
        tmp_path,
        "p1:b0:0:1\np1:b1:0:1\n",
        lease("a", "t1", "c0", T, T + 1, "p1:b0:0:1") + ack("a", "t1", T + 0.1, "p1:b0:0:1"),
        # "b" is leased again only after c0's lease on it expired (c0 was killed).
        lease("b", "t2", "c0", T, T + 1, "p1:b1:0:1")
        + lease("b", "t3", "c1", T + 1.05, T + 2, "p1:b1:0:1")
        + ack("b", "t3", T + 1.1, "p1:b1:0:1"),
    )
    assert (report.messages, report.lost, report.double_acked) == (2, 0, 0)
    assert (report.double_leased, report.half_batches) == (0, 0)
    assert not report.failed


def test_a_lease_during_a_valid_lease_is_a_double_lease(tmp_path: Path) -> None:
    report = planted(
        tmp_path,
        "p1:b0:0:1\n",
        lease("a", "t1", "c0", T, T + 1, "p1:b0:0:1"),  # killed: valid until T + 1
        lease("a", "t2", "c1", T + 0.5, T + 1.5, "p1:b0:0:1")
        + ack("a", "t2", T + 0.6, "p1:b0:0:1"),
    )
    assert report.double_leased == 1
    assert report.lost == 0
    assert report.failed
    assert any("double lease: a leased by c1" in p for p in report.problems)


def test_a_lease_after_a_settled_lease_or_within_the_margin_is_not(tmp_path: Path) -> None:
    report = planted(
        tmp_path,
        "p1:b0:0:1\np1:b1:0:1\n",
        lease("a", "t1", "c0", T, T + 30, "p1:b0:0:1") + ack("a", "t1", T + 0.2, "p1:b0:0:1"),
        lease("a", "t2", "c1", T + 0.3, T + 30, "p1:b0:0:1")
        + lease("b", "t3", "c1", T, T + 1, "p1:b1:0:1"),
        lease("b", "t4", "c2", T + 1 - CLOCK_MARGIN / 2, T + 2, "p1:b1:0:1")
        + ack("b", "t4", T + 1.5, "p1:b1:0:1"),
    )
    assert report.double_leased == 0


def test_a_message_never_acked_is_lost(tmp_path: Path) -> None:
    report = planted(
        tmp_path,
        "p1:b0:0:1\np1:b1:0:1\n",
        lease("a", "t1", "c0", T, T + 1, "p1:b0:0:1") + ack("a", "t1", T + 0.1, "p1:b0:0:1"),
    )
    assert report.lost == 1
    assert "lost: p1:b1:0:1 (never leased)" in report.problems
    assert report.failed


def test_an_ack_cut_off_before_its_result_is_unconfirmed_not_lost(tmp_path: Path) -> None:
    report = planted(
        tmp_path,
        "p1:b0:0:1\np1:b1:0:1\n",
        # c0 was killed inside ack() of "a"; "b" was refused (its lease had expired).
        lease("a", "t1", "c0", T, T + 1, "p1:b0:0:1") + ack("a", "t1", T + 0.1, "p1:b0:0:1", ""),
        lease("b", "t2", "c1", T, T + 1, "p1:b1:0:1")
        + ack("b", "t2", T + 1.5, "p1:b1:0:1", "NACK"),
    )
    assert report.extra["ack-unconfirmed"] == 1
    assert report.problems == ["lost: p1:b1:0:1 (LEASE, ACKING, NACK)"]
    assert report.lost == 1


def test_a_refused_ack_during_a_connection_kill_is_unconfirmed_not_lost(tmp_path: Path) -> None:
    # The server may have run the ack, then the reply was lost and the retry found
    # nothing to delete. A refused ack with no kill round near it is a loss.
    (tmp_path / "kills.log").write_text(f"{T + 0.5:.6f} {T + 0.51:.6f}\n")
    report = planted(
        tmp_path,
        "p1:b0:0:1\np1:b1:0:1\n",
        lease("a", "t1", "c0", T, T + 9, "p1:b0:0:1")
        + ack("a", "t1", T + 0.505, "p1:b0:0:1", "NACK"),
        lease("b", "t2", "c1", T, T + 9, "p1:b1:0:1") + ack("b", "t2", T + 2, "p1:b1:0:1", "NACK"),
    )
    assert report.extra["ack-unconfirmed"] == 1
    assert report.problems == ["lost: p1:b1:0:1 (LEASE, ACKING, NACK)"]


def test_two_successful_acks_are_a_double_ack(tmp_path: Path) -> None:
    report = planted(
        tmp_path,
        "p1:b0:0:1\n",
        lease("a", "t1", "c0", T, T + 1, "p1:b0:0:1") + ack("a", "t1", T + 0.1, "p1:b0:0:1"),
        lease("a", "t2", "c1", T + 2, T + 3, "p1:b0:0:1") + ack("a", "t2", T + 2.1, "p1:b0:0:1"),
    )
    assert report.double_acked == 1
    assert report.failed


def test_part_of_a_batch_is_a_half_batch_and_a_torn_line_is_ignored(tmp_path: Path) -> None:
    # The producer was killed inside put_many, yet one of its three messages was stored.
    report = planted(
        tmp_path,
        "p1:b0:0:1\np1:b1:0:",  # the torn last line of a SIGKILLed producer
        lease("a", "t1", "c0", T, T + 1, "p1:b0:0:1")
        + ack("a", "t1", T + 0.1, "p1:b0:0:1")
        + lease("x", "t2", "c0", T, T + 1, "p1:b5:1:3")
        + ack("x", "t2", T + 0.1, "p1:b5:1:3")
        + "LEASE y t3 c0 100",
    )
    assert report.half_batches == 1
    assert report.lost == 0
    assert report.failed


@pytest.mark.parametrize(
    ("url", "has_files"),
    [
        ("sqlite:///q.sqlite3", True),
        ("lmdb:////var/lib/q", True),
        ("memory://", False),
        ("postgresql://u@127.0.0.1:5432/db?schema=s", False),
        ("redis://127.0.0.1:6379/0", False),
    ],
)
def test_only_urls_with_a_path_and_no_host_name_files(url: str, has_files: bool) -> None:
    assert (store_files(url) is not None) == has_files


def test_damage_campaign_skips_a_store_it_cannot_damage_with_a_clear_line() -> None:
    report = run_damage("memory://")
    assert report.skipped is not None
    assert report.line() == (
        "damage campaign [memory]: skipped: "
        "the store has no files and cannot damage its own records"
    )
    assert not report.failed


def test_connection_kill_campaign_skips_an_embedded_store(tmp_path: Path) -> None:
    report = run_connection_kills(f"sqlite:///{tmp_path}/q.sqlite3")
    assert report.skipped == "the store has no server connections to kill"
    assert not report.failed


@pytest.mark.services
def test_damage_campaign_damages_records_on_a_server_and_leaves_its_queues_alone(
    server_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_queue_store(server_url)
    try:
        kept = store.put("mine", b"keep", codec="msgpack").id
        kinds = len(getattr(store, "damages", ()))
    finally:
        store.close()
    report = run_damage(server_url, messages=200)
    with capsys.disabled():
        print("\n" + report.line())
    assert report.extra["cases"] == kinds >= 1
    assert report.extra["delivered"] == kinds * 180
    assert not report.failed, report.problems
    store = open_queue_store(server_url)
    try:
        assert store.queues() == ["mine"]
        assert store.inspect("mine", kept) is not None
    finally:
        store.close()


@pytest.mark.services
def test_connection_kill_campaign_loses_nothing(
    server_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    report = run_connection_kills(server_url, seconds=4, messages=200)
    with capsys.disabled():
        print("\n" + report.line())
    assert report.kills >= 10
    assert report.extra["connections-closed"] > 0
    assert report.messages == 400
    assert not report.failed, report.problems


def test_the_command_prints_a_line_per_campaign_and_exits_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/mine.sqlite3"
    assert main([url, "--campaign", "damage", "--messages", "60"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    # Three kinds of file damage and one of record damage, 60 messages each.
    assert out[0].startswith("damage campaign [sqlite]: messages=240 ")
    assert out[0].endswith(" ok")
    # The user's file was never created or touched: the campaign works on a copy.
    assert not (tmp_path / "mine.sqlite3").exists()


def test_campaigns_leave_the_users_queues_alone_and_clean_up(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/mine.sqlite3"
    store = open_queue_store(url)
    try:
        kept = store.put("mine", b"keep", codec="msgpack").id
    finally:
        store.close()
    report = run_contention(url, processes=2, rounds=5)
    assert not report.failed, report.problems
    store = open_queue_store(url)
    try:
        assert store.queues() == ["mine"]
        assert store.inspect("mine", kept) is not None
    finally:
        store.close()
