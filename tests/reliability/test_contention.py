"""Many processes on one store (localqueue.testing.campaigns.run_contention): lock
contention never reaches callers within the timeout."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from localqueue.testing.campaigns import run_contention


@pytest.mark.parametrize(
    ("engine", "durability", "rounds"),
    [
        ("sqlite", "full", 150),
        ("sqlite", "normal", 150),
        ("lmdb", "", 150),
        pytest.param("postgresql", "", 40, marks=pytest.mark.services),
        pytest.param("redis", "", 40, marks=pytest.mark.services),
    ],
)
def test_many_processes_never_see_a_lock_error(
    engine: str,
    durability: str,
    rounds: int,
    campaign_url: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = campaign_url(engine)
    if durability:
        url = url.replace("durability=normal", f"durability={durability}")
    report = run_contention(url, processes=8, rounds=rounds)
    with capsys.disabled():
        print("\n" + report.line())
    assert report.errors == 0, report.problems[:1]
    # Every child put 3 messages a round and acked at most 3: nothing is leased any more.
    assert report.left_in_store == 0
    assert not report.failed
