"""Backend URLs: parsing, options, the registry's look-up order and plugins."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import localqueue
from localqueue import registry
from localqueue.errors import (
    BackendNotInstalledError,
    ConfigurationError,
    InvalidOptionError,
    UnknownBackendError,
)
from localqueue.registry import ClassBackend, open_queue_store, register
from localqueue.stores.memory import MemoryAttemptStore, MemoryQueueStore
from localqueue.urls import Option, StoreURL, redact

TOY_PLUGIN = Path(__file__).parent / "fixtures" / "toy_plugin"


@pytest.mark.parametrize(
    ("url", "scheme", "path"),
    [
        ("sqlite:///jobs.db", "sqlite", "jobs.db"),
        ("sqlite:////var/lib/jobs.db", "sqlite", "/var/lib/jobs.db"),
        ("SQLite:///sub/dir/jobs.db", "sqlite", "sub/dir/jobs.db"),
        ("jobs.db", "sqlite", "jobs.db"),
        ("/abs/jobs.db", "sqlite", "/abs/jobs.db"),
        ("lmdb:///data/queue", "lmdb", "data/queue"),
        ("lmdb:////data/queue", "lmdb", "/data/queue"),
        ("memory://", "memory", ""),
        ("sqlite:///with%20space.db", "sqlite", "with space.db"),
    ],
)
def test_paths_follow_sqlalchemy_rules(url: str, scheme: str, path: str) -> None:
    parsed = StoreURL.parse(url)
    assert (parsed.scheme, parsed.path) == (scheme, path)


def test_pathlike_means_sqlite(tmp_path: Path) -> None:
    parsed = StoreURL.parse(tmp_path / "q.db")
    assert (parsed.scheme, parsed.path) == ("sqlite", str(tmp_path / "q.db"))


def test_server_url_parts_and_redaction() -> None:
    parsed = StoreURL.parse("postgresql://app:s3cr%40t@db.local:5433/jobs?schema=q")
    assert (parsed.host, parsed.port, parsed.username, parsed.password) == (
        "db.local",
        5433,
        "app",
        "s3cr@t",
    )
    assert parsed.path == "jobs"
    assert parsed.query == {"schema": "q"}
    for text in (repr(parsed), str(parsed), parsed.redacted()):
        assert "s3cr" not in text
        assert "***" in text
    assert redact("redis://:pw@localhost:6379/0") == "redis://:***@localhost:6379/0"
    assert redact("sqlite:///x.db") == "sqlite:///x.db"


@pytest.mark.parametrize(
    "url", ["", "sqlite:///x.db?a=1&a=2", "redis://host:notaport/0", "sqlite:///x.db#frag"]
)
def test_malformed_urls(url: str) -> None:
    with pytest.raises(ConfigurationError):
        StoreURL.parse(url)


def test_options_are_declared_and_typed() -> None:
    spec = {
        "size": Option.integer(10, minimum=1),
        "wait": Option.number(0.5),
        "fast": Option.boolean(False),
        "mode": Option.choice("a", ("a", "b")),
        "name": Option.text("x"),
    }
    parsed = StoreURL.parse("memory://?size=3&wait=1.5&fast=yes&mode=B")
    assert parsed.options(spec) == {"size": 3, "wait": 1.5, "fast": True, "mode": "b", "name": "x"}
    for bad in ("size=0", "size=x", "wait=-1", "wait=inf", "fast=maybe", "mode=c", "other=1"):
        with pytest.raises(InvalidOptionError) as info:
            StoreURL.parse(f"memory://?{bad}").options(spec)
        assert info.value.option == bad.split("=")[0]


def test_unknown_scheme_names_installed_ones_and_suggests() -> None:
    with pytest.raises(UnknownBackendError) as info:
        open_queue_store("sqlit:///x.db")
    assert info.value.suggestion == "sqlite"
    assert {"memory", "sqlite", "lmdb"} <= set(info.value.known)
    assert "sqlite" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_known_plugin_scheme_that_is_missing_gives_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(registry._PLUGIN_HINTS, "nosuchdb", "pip install localqueue-nosuchdb")
    with pytest.raises(BackendNotInstalledError, match="pip install localqueue-nosuchdb") as info:
        open_queue_store("nosuchdb://localhost/test")
    assert info.value.scheme == "nosuchdb"
    assert isinstance(info.value, ImportError)


def test_missing_lmdb_extra_gives_install_hint() -> None:
    script = (
        "import sys; sys.modules['lmdb'] = None\n"
        "from localqueue import open_queue_store, BackendNotInstalledError\n"
        "try:\n"
        "    open_queue_store('lmdb:///nowhere')\n"
        "except BackendNotInstalledError as exc:\n"
        "    print(exc.install_hint)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.stdout.strip() == "pip install 'localqueue[lmdb]'", result.stderr


def test_unknown_option_is_an_error() -> None:
    with pytest.raises(InvalidOptionError, match="serialiser"):
        open_queue_store("memory://?serialiser=json")
    with pytest.raises(InvalidOptionError, match="serializer"):
        open_queue_store("memory://?serializer=pickle")


def test_register_at_runtime_and_refuse_silent_replacement() -> None:
    backend = ClassBackend(MemoryQueueStore, MemoryAttemptStore)
    register("unit-test", backend)
    register("unit-test", backend)  # same target again is fine
    try:
        store = open_queue_store("unit-test://")
        assert isinstance(store, MemoryQueueStore)
        store.close()
        with pytest.raises(ConfigurationError, match="already registered"):
            register("unit-test", "somewhere:else")
        register("unit-test", "localqueue.stores.memory:backend", replace=True)
        assert registry.get_backend("unit-test") is not backend
    finally:
        registry._registered.pop("unit-test", None)
        registry._loaded.pop("unit-test", None)
    with pytest.raises(ConfigurationError):
        register("bad scheme!", backend)


def test_installed_plugin_distribution_is_found_lazily(tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(TOY_PLUGIN),
        ],
        check=True,
        capture_output=True,
    )
    script = textwrap.dedent(
        """
        import sys
        from localqueue import PersistentQueue, registry
        assert "toy_localqueue" not in sys.modules, "plugin imported before use"
        assert "toy" in registry.available_schemes()
        assert "toy_localqueue" not in sys.modules, "listing schemes imported the plugin"
        queue = PersistentQueue("jobs", store="toy://")
        queue.put({"n": 1})
        assert queue.get_nowait() == {"n": 1}
        assert "toy_localqueue" in sys.modules
        print("ok")
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), *sys.path])}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_import_needs_no_optional_extra() -> None:
    script = (
        "import sys; sys.modules['lmdb'] = None; import localqueue, localqueue.stores; print('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.stdout.strip() == "ok", result.stderr
    assert localqueue.__version__
