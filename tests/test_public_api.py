"""The curated public surface, the error tree, and the layering rule."""

from __future__ import annotations

import ast
import inspect
import queue as stdlib_queue
from pathlib import Path

import localqueue
from localqueue import errors

PACKAGE = Path(localqueue.__file__).parent


def test_all_is_sorted_and_complete() -> None:
    assert localqueue.__all__ == sorted(localqueue.__all__)
    for name in localqueue.__all__:
        assert hasattr(localqueue, name), name
    public_errors = {
        n
        for n, v in vars(errors).items()
        if isinstance(v, type) and issubclass(v, BaseException) and v.__module__ == errors.__name__
    }
    assert public_errors == set(errors.__all__)
    assert public_errors <= set(localqueue.__all__)


def test_every_exported_name_is_documented() -> None:
    for name in localqueue.__all__:
        obj = getattr(localqueue, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"


def test_error_tree_has_one_root_and_keeps_stdlib_bases() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.LocalQueueError), name
        assert cls.__doc__, name
    assert issubclass(errors.Empty, stdlib_queue.Empty)
    assert issubclass(errors.Full, stdlib_queue.Full)
    assert issubclass(errors.UnknownBackendError, ValueError)
    assert issubclass(errors.BackendNotInstalledError, ImportError)
    assert issubclass(errors.QueueStoreLockedError, errors.StoreError)


# Modules above the storage seam: they may use protocols, registry, errors and
# serializers, never a concrete store.
ABOVE_THE_SEAM = ("queue.py", "retry.py", "worker.py", "_delivery.py", "runner.py", "cli", "compat")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_layers_above_the_protocols_never_import_a_concrete_store() -> None:
    checked = 0
    for entry in ABOVE_THE_SEAM:
        target = PACKAGE / entry
        files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
        for path in files:
            if not path.exists():
                continue
            checked += 1
            bad = {m for m in _imports(path) if m.startswith("localqueue.stores")}
            assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"
    assert checked >= 1


def test_py_typed_is_shipped() -> None:
    assert (PACKAGE / "py.typed").exists()


STORE_SECTIONS = [
    "options",
    "error translation",
    "engine handle",
    "message building",
    "queue store",
    "attempt store",
    "backend",
]
STORE_MODULES = [
    PACKAGE / "stores" / "memory.py",
    PACKAGE / "stores" / "sqlite.py",
    PACKAGE / "stores" / "lmdb.py",
    PACKAGE.parent / "backends" / "postgres" / "localqueue_postgres" / "store.py",
    PACKAGE.parent / "backends" / "redis" / "localqueue_redis" / "store.py",
]


def test_every_store_module_has_the_same_sections_in_the_same_order() -> None:
    for path in STORE_MODULES:
        headers = [
            line[len("# -- ") :].rstrip("-").strip()
            for line in path.read_text().splitlines()
            if line.startswith("# -- ")
        ]
        assert headers == STORE_SECTIONS, path.name
