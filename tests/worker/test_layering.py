"""The retry layer and the workers never import a concrete store."""

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
    paths = [PACKAGE / "retry.py", PACKAGE / "runner.py", *sorted(PACKAGE.glob("worker*.py"))]
    assert len(paths) >= 3
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
