"""Settings every test run of this repository shares: reproducible Hypothesis runs.

Each run draws with one seed, printed in the header and again after any
failure, so a red run can be replayed exactly with ``--hypothesis-seed``.
Hypothesis's example database is off: a clean clone and a reused checkout
draw the same examples for the same seed.
"""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import settings

settings.register_profile("localqueue", database=None, print_blob=True, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "localqueue"))

_SEED_ENV = "LOCALQUEUE_HYPOTHESIS_SEED"


def pytest_configure(config: pytest.Config) -> None:
    """Pick the run's Hypothesis seed unless ``--hypothesis-seed`` gave one."""
    if config.getoption("hypothesis_seed", default=None) is None:
        # Runs before Hypothesis's own pytest_configure, which reads the option.
        config.option.hypothesis_seed = os.environ.get(_SEED_ENV) or str(random.getrandbits(32))


def pytest_report_header(config: pytest.Config) -> str:
    """Show the seed at the top of every run."""
    return f"hypothesis seed: {config.getoption('hypothesis_seed')}"


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    """After a failed run, say how to replay its Hypothesis draws."""
    if exitstatus != 0:
        seed = config.getoption("hypothesis_seed")
        terminalreporter.write_line(
            f"Hypothesis seed of this run: {seed} "
            f"(replay with: python -m pytest --hypothesis-seed={seed})"
        )
