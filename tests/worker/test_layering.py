"""The retry layer and the workers never import a concrete store; distributions outside
the core (backends/, contrib/) never import a private core name."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import localqueue

PACKAGE = Path(localqueue.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_retry_and_worker_modules_import_no_store_module() -> None:
    paths = [
        PACKAGE / "retry.py",
        PACKAGE / "runner.py",
        PACKAGE / "_delivery.py",
        *sorted(PACKAGE.glob("worker*.py")),
    ]
    assert len(paths) >= 4
    for path in paths:
        stores = {m for m in _imported_modules(path) if m.startswith("localqueue.stores")}
        assert not stores, f"{path.name} imports {stores}"


def test_importing_them_loads_no_store_module() -> None:
    code = (
        "import sys, localqueue.retry, localqueue.worker, localqueue.runner;"
        "print(sorted(m for m in sys.modules if m.startswith('localqueue.stores.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=PACKAGE.parent,
        timeout=60,
    )
    assert out.stdout.strip() == "[]"


def _private_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
            if node.module.startswith("localqueue"):
                found.update(
                    f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")
                )
        found.update(
            m
            for m in modules
            if m.split(".")[0] == "localqueue" and any(p.startswith("_") for p in m.split("."))
        )
    return found


def test_distributions_outside_the_core_import_no_private_core_name() -> None:
    root = PACKAGE.parent
    paths = [p for folder in ("backends", "contrib") for p in sorted((root / folder).rglob("*.py"))]
    assert len(paths) >= 10
    offending = {str(p.relative_to(root)): _private_imports(p) for p in paths}
    assert {p: names for p, names in offending.items() if names} == {}


def test_the_private_import_check_sees_a_private_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from localqueue._models import build_message\n"
        "from localqueue.stores import _lmdb_repair\n"
        "import localqueue.testing._base\n"
        "from localqueue.kit import build_message as fine\n"
    )
    assert _private_imports(probe) == {
        "localqueue._models",
        "localqueue.stores._lmdb_repair",
        "localqueue.testing._base",
    }
