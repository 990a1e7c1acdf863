"""Crash campaign (localqueue.testing.campaigns.run_crash) on every engine: producers and
consumers SIGKILLed at random, then the audit. Run alone with ``pytest -m crash -s`` to
see the summary lines; ``LOCALQUEUE_CAMPAIGN_SECONDS`` makes the chaos phase longer."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from localqueue.testing.campaigns import run_crash
from localqueue.testing.campaigns.__main__ import main

pytestmark = pytest.mark.crash

CHAOS_SECONDS = float(os.environ.get("LOCALQUEUE_CAMPAIGN_SECONDS", "8"))
# Server stores share the two cores with their server: a shorter run keeps CI's time.
SECONDS = {"sqlite": CHAOS_SECONDS, "lmdb": CHAOS_SECONDS}


@pytest.mark.parametrize(
    "engine",
    [
        "sqlite",
        "lmdb",
        pytest.param("postgresql", marks=pytest.mark.services),
        pytest.param("redis", marks=pytest.mark.services),
    ],
)
def test_crash_campaign(
    engine: str, campaign_url: Callable[[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    report = run_crash(campaign_url(engine), seconds=SECONDS.get(engine, CHAOS_SECONDS / 2))
    with capsys.disabled():
        print("\n" + report.line())
    assert report.messages > 0
    assert report.kills > 0
    assert report.lost == 0, report.problems
    assert report.double_acked == 0
    assert report.double_leased == 0, report.problems
    assert report.half_batches == 0
    assert report.left_in_store == 0
    assert report.errors == 0, report.problems
    assert not report.failed


def test_crash_campaign_catches_a_store_that_double_leases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The children import the planted backend by module name through the setup hook.
    here = str(Path(__file__).parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]))
    monkeypatch.syspath_prepend(here)
    report = run_crash(
        f"lq-planted-short-lease:///{tmp_path}/planted.sqlite3",
        seconds=2,
        drain_timeout=10,
        setup="planted_backend:register_planted",
    )
    assert report.double_leased > 0, report.line()
    assert report.failed


def test_the_command_exits_non_zero_on_a_double_leasing_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    here = str(Path(__file__).parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]))
    monkeypatch.syspath_prepend(here)
    url = f"lq-planted-short-lease:///{tmp_path}/planted.sqlite3"
    setup = "planted_backend:register_planted"
    assert main([url, "--campaign", "crash", "--seconds", "2", "--setup", setup]) == 1
    out = capsys.readouterr().out
    assert out.startswith("crash campaign [lq-planted-short-lease]: ")
    assert " FAILED\n" in out
    assert "  double lease: " in out
