"""Runs the whole conformance suite against one mutant in a child pytest process.

``python tests/mutants/lq_mutant_runner.py [--jobs N] [--report FILE] [NAME ...]``
runs every mutant (or the named ones) and writes one line per survivor to FILE.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SUITE = HERE / "mutant_suite.py"
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import lq_mutants  # noqa: E402

# A test that hangs counts as a failure of that test, as it would in CI, but sooner.
TEST_TIMEOUT_S = 60
RUN_TIMEOUT_S = 600
_FAILED = re.compile(r"\b(\d+) failed\b")
_ERRORS = re.compile(r"\b(\d+) errors?\b")


@dataclass(frozen=True)
class Outcome:
    """What one child run of the suite did."""

    name: str
    returncode: int
    failed: int
    seconds: float
    tail: str
    assertion_error: bool = False

    @property
    def killed(self) -> bool:
        """The suite failed: exit code 1 with at least one failed test.

        A suite fixture's assertion failing in setup counts too (pytest calls it
        an error); any other error, a usage error or no test run does not.
        """
        return self.returncode == 1 and (self.failed > 0 or self.assertion_error)

    @property
    def passed(self) -> bool:
        """The suite passed: exit code 0."""
        return self.returncode == 0


def _focus(name: str) -> str:
    """The public methods the mutant overrides: tests naming them run first."""
    cls = lq_mutants.by_name(name).cls
    return ",".join(m for m in vars(cls) if not m.startswith("_") and callable(vars(cls)[m]))


def run_suite(name: str) -> Outcome:
    """Run the conformance suite with ``lqmutant://`` opening ``name`` (a mutant or control)."""
    classes = ["TestMutantQueueStore", "TestMutantAttemptStore"]
    if not name.startswith("control-") and lq_mutants.by_name(name).kind == "attempt":
        classes.reverse()  # the mutated kind's tests first: a kill stops the run sooner
    env = dict(os.environ)
    env["LQ_MUTANT"] = name
    env["LQ_MUTANT_FOCUS"] = "" if name.startswith("control-") else _focus(name)
    env.pop("LQ_MUTANT_SPAWNED", None)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE / "_boot"), str(HERE), *filter(None, [env.get("PYTHONPATH")])]
    )
    command = [
        sys.executable,
        "-m",
        "pytest",
        *(f"{SUITE}::{c}" for c in classes),
        "-x",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "lq_mutant_plugin",
        "-o",
        f"timeout={TEST_TIMEOUT_S}",
        "--rootdir",
        str(ROOT),
    ]
    started = time.monotonic()
    try:
        done = subprocess.run(
            command,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
        out, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        out, code = f"runner timed out after {RUN_TIMEOUT_S} s: {exc}", -1
    lines = out.strip().splitlines()
    summary = lines[-1] if lines else ""
    match = _FAILED.search(summary)
    setup_assert = bool(_ERRORS.search(summary)) and any(
        line.startswith("E   ") and "AssertionError" in line for line in lines
    )
    return Outcome(
        name,
        code,
        int(match.group(1)) if match else 0,
        time.monotonic() - started,
        "\n".join(lines[-25:]),
        setup_assert,
    )


def run_all(names: list[str], jobs: int) -> dict[str, Outcome]:
    """Run ``names`` with ``jobs`` child runs at a time."""
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return dict(zip(names, pool.map(run_suite, names), strict=True))


def _first_failure(outcome: Outcome) -> str:
    for line in outcome.tail.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line
    return "?"


def survivor_lines(outcomes: dict[str, Outcome]) -> list[str]:
    """One line per mutant not killed: name, store, bug, the kind of test that would catch it."""
    lines = []
    for name, o in outcomes.items():
        if name.startswith("control-") or o.killed:
            continue
        m = lq_mutants.by_name(name)
        lines.append(
            f"{name} | {m.engine} {m.kind} store | bug: {m.bug} | caught by: {m.catch}"
            f" | rc={o.returncode}"
        )
    return lines


def write_report(path: Path, outcomes: dict[str, Outcome]) -> None:
    """Overwrite ``path``: a ``#`` summary line, then one line per survivor of ``outcomes``."""
    survivors = survivor_lines(outcomes)
    tried = sum(not name.startswith("control-") for name in outcomes)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    header = f"# {tried} mutants run, {len(survivors)} survived ({stamp})\n"
    path.write_text(header + "".join(line + "\n" for line in survivors))


def main(argv: list[str] | None = None) -> int:
    """Run mutants, print each outcome, write the survivors to ``--report``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--report", type=Path)
    args = parser.parse_args(argv)
    names = args.names or [m.name for m in lq_mutants.MUTANTS]
    outcomes = run_all(names, args.jobs)
    for name, o in outcomes.items():
        if name.startswith("control-"):
            print(f"control  {o.seconds:6.1f}s rc={o.returncode} {name}: {o.tail[-300:]}")
            continue
        verdict = "killed" if o.killed else "SURVIVED"
        print(f"{verdict:8} {o.seconds:6.1f}s rc={o.returncode} {name}: {_first_failure(o)}")
    survivors = survivor_lines(outcomes)
    if args.report:
        write_report(args.report, outcomes)
    tried = sum(not name.startswith("control-") for name in outcomes)
    print(f"{tried - len(survivors)} killed, {len(survivors)} survived")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
