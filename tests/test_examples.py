"""Each script in examples/ runs to completion on its own and prints what it promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# script -> lines its output must contain
CASES: dict[str, tuple[str, ...]] = {
    "threaded_workers.py": (
        "processed 200 jobs with 4 threads",
        "each job exactly once: True",
        "left in the queue: 0",
    ),
    "multiprocess_workers.py": (
        "processed 300 jobs with 3 processes",
        "each job exactly once: True",
        "left in the queue: 0",
    ),
    "async_worker.py": (
        "acked 20, dead-lettered 1",
        "dead letter: https://example.com/broken: ConnectionError: cannot reach",
    ),
    "retry_only.py": (
        "charged 30 for order-1 after 2 calls",
        "order-2 failed after 3 calls: payment gateway timed out",
        "after a restart: retry budget for 'charge:order-2' exhausted after 3 attempts",
        "order-2 was called 3 times in all",
        "budget reset: True",
    ),
    "email_worker.py": ("sending email to user@example.com",),
    "exec_command.py": ("acked 2, dead letters 1", "dead letter {'cc': 'nobody'}"),
}


def test_every_example_has_a_case() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(CASES)


@pytest.mark.parametrize("script", sorted(CASES))
def test_example_runs(script: str) -> None:
    # The checkout under test comes first, ahead of any installed localqueue.
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": pythonpath},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"
    for line in CASES[script]:
        assert line in done.stdout, f"{script}: {line!r} not in its output:\n{done.stdout}"
