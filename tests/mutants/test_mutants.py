"""The conformance suite must fail on every planted-bug store (``lq_mutants``).

Each mutant runs the whole suite in a child pytest process (``-x``: the first
failure ends the run). A mutant is killed only when that run exits with code 1
and reports at least one failed test; a run that errors, finds no test or is
interrupted does not count. The control runs the same runner on the unmutated
stores and requires it to pass, so a broken runner cannot make every mutant
look killed. All runs happen once per session, two at a time; with
``LQ_MUTANT_REPORT=FILE`` the survivors are also written to FILE.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

HERE = Path(__file__).resolve().parent


def _load(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


lq_mutants = _load("lq_mutants")
runner = _load("lq_mutant_runner")

CONTROLS = ["control-memory", "control-sqlite"]
NAMES = [m.name for m in lq_mutants.MUTANTS]


@pytest.fixture(scope="session")
def outcomes(request: pytest.FixtureRequest) -> dict[str, object]:
    """The controls and every selected mutant's run, computed once, two at a time."""
    selected = {
        item.callspec.params["name"]
        for item in request.session.items
        if hasattr(item, "callspec") and "name" in item.callspec.params
    }
    names = CONTROLS + [n for n in NAMES if n in selected]
    results: dict[str, object] = runner.run_all(names, jobs=2)
    report = os.environ.get("LQ_MUTANT_REPORT")
    if report:  # a file listing the survivors, for whoever is adding suite tests
        runner.write_report(Path(report), results)
    return results


@pytest.mark.parametrize("name", CONTROLS)
def test_unmutated_stores_pass_the_suite(name: str, outcomes: dict[str, object]) -> None:
    outcome = outcomes[name]
    assert outcome.passed, f"the suite fails on the real store ({name}):\n{outcome.tail}"  # type: ignore[attr-defined]


def test_the_mutant_set_covers_both_engines_and_kinds() -> None:
    kinds = {(m.engine, m.kind) for m in lq_mutants.MUTANTS}
    assert kinds == {(e, k) for e in ("memory", "sqlite") for k in ("queue", "attempt")}
    assert len(NAMES) == len(set(NAMES))
    assert sum(m.engine == "sqlite" for m in lq_mutants.MUTANTS) >= 12
    assert all(m.bug for m in lq_mutants.MUTANTS)


@pytest.mark.parametrize("name", NAMES)
def test_suite_kills_mutant(name: str, outcomes: dict[str, object]) -> None:
    for control in CONTROLS:
        if not outcomes[control].passed:  # type: ignore[attr-defined]
            pytest.fail(f"{control} does not pass, so no kill can be trusted")
    outcome = outcomes[name]
    mutant = lq_mutants.by_name(name)
    assert outcome.killed, (  # type: ignore[attr-defined]
        f"SURVIVOR {name} ({mutant.engine} {mutant.kind} store): {mutant.bug}\n"
        f"a test like this would catch it: {mutant.catch}\n"
        f"child exit code {outcome.returncode}:\n{outcome.tail}"  # type: ignore[attr-defined]
    )
