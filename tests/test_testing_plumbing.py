"""The shipped suite's plumbing: safe to install, fails when unconfigured, isolates URL runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import localqueue.testing
from localqueue.errors import ConfigurationError
from localqueue.protocols import NamespacedBackend
from localqueue.registry import get_backend
from localqueue.urls import StoreURL

pytest_plugins = ["pytester"]

WITHOUT_HYPOTHESIS = "import sys; sys.modules['hypothesis'] = None; "


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_plugin_imports_without_hypothesis() -> None:
    result = _python(WITHOUT_HYPOTHESIS + "import localqueue.testing.plugin")
    assert result.returncode == 0, result.stderr


def test_a_suite_without_hypothesis_names_the_testing_extra() -> None:
    result = _python(WITHOUT_HYPOTHESIS + "from localqueue.testing import QueueStoreSuite")
    assert result.returncode != 0
    assert "pip install 'durable-localqueue[testing]'" in result.stderr
    assert "'hypothesis'" in result.stderr
    assert result.stderr.count("Traceback") == 1


def test_testing_exports_are_sorted_lazy_and_resolve() -> None:
    names = localqueue.testing.__all__
    assert names == sorted(names)
    assert set(names) == set(localqueue.testing._EXPORTS)
    for name in names:
        assert getattr(localqueue.testing, name).__name__ == name
        assert name in dir(localqueue.testing)
    with pytest.raises(AttributeError):
        _ = localqueue.testing.NoSuchSuite  # type: ignore[attr-defined]


def test_a_subclass_without_store_url_fails_naming_the_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "from localqueue.testing import AckSuite\n\nclass TestMine(AckSuite):\n    pass\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors", 0) > 0
    assert "passed" not in outcomes
    assert "skipped" not in outcomes
    result.stdout.fnmatch_lines(["*TestMine defines no `store_url` fixture*"])


def test_memory_urls_run_with_one_shared_handle_per_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "from localqueue.testing import AckSuite, HandlesSuite\n\n"
        "class TestMemory(AckSuite, HandlesSuite):\n    pass\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--localqueue-url", "memory://")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) > 0
    assert "failed" not in outcomes
    assert "errors" not in outcomes


def test_a_persistent_backend_without_the_hook_fails_with_advice(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        "from localqueue.registry import ClassBackend, register\n"
        "from localqueue.stores.sqlite import SQLiteAttemptStore, SQLiteQueueStore\n"
        "register('plainsqlite', ClassBackend(SQLiteQueueStore, SQLiteAttemptStore))\n"
    )
    pytester.makepyfile(
        "from localqueue.testing import AckSuite\n\nclass TestPlain(AckSuite):\n    pass\n"
    )
    url = f"plainsqlite:///{pytester.path}/q.db"
    result = pytester.runpytest("-p", "no:cacheprovider", "--localqueue-url", url)
    assert "passed" not in result.parseoutcomes()
    result.stdout.fnmatch_lines(["*no namespace()/drop_namespace() hook*"])


@pytest.mark.parametrize(("scheme", "query"), [("sqlite", "normal"), ("lmdb", "nosync")])
def test_path_namespaces_are_fresh_and_dropped_whole(
    scheme: str, query: str, tmp_path: Path
) -> None:
    backend = get_backend(scheme)
    assert isinstance(backend, NamespacedBackend)
    given = StoreURL.parse(f"{scheme}:///{tmp_path}/store?durability={query}")
    one, two = backend.namespace(given, "a1"), backend.namespace(given, "b2")
    assert one != two
    assert one.query == given.query
    store = backend.open_queue_store(one)
    store.put("q", b"x", codec="json")
    store.close()
    other = backend.open_queue_store(two)
    assert other.stats("q").total == 0
    other.close()
    backend.drop_namespace(one)
    backend.drop_namespace(two)
    backend.drop_namespace(two)  # idempotent
    assert list(tmp_path.iterdir()) == []


def test_dropping_a_url_that_is_no_namespace_is_refused(tmp_path: Path) -> None:
    backend = get_backend("sqlite")
    assert isinstance(backend, NamespacedBackend)
    (tmp_path / "keep.db").write_bytes(b"")
    with pytest.raises(ConfigurationError):
        backend.drop_namespace(StoreURL.parse(f"sqlite:///{tmp_path}/keep.db"))
    assert (tmp_path / "keep.db").exists()


def test_to_string_round_trips_with_the_password() -> None:
    url = StoreURL.parse("postgresql://u:p%40ss@h:5/db?schema=a&serializer=json")
    assert StoreURL.parse(url.to_string()) == url
    assert "p%40ss" in url.to_string()
