"""Backend URLs: parsing, options, the registry's look-up order and plugins."""

from __future__ import annotations

import os
import re
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
    StoreNotFoundError,
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
    assert result.stdout.strip() == (
        "pip install 'durable-localqueue[lmdb]' (from a source checkout: pip install '.[lmdb]')"
    ), result.stderr


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


def test_stores_never_see_the_queue_serializer_option() -> None:
    seen: list[StoreURL] = []

    class Recording(MemoryQueueStore):
        @classmethod
        def from_url(cls, url: StoreURL, *, clock: object = None) -> MemoryQueueStore:
            seen.append(url)
            url.options({})  # a store declaring no options must still open
            return cls()

    class RecordingAttempts(MemoryAttemptStore):
        @classmethod
        def from_url(cls, url: StoreURL, *, clock: object = None) -> MemoryAttemptStore:
            seen.append(url)
            url.options({})
            return cls()

    register("unit-codec", ClassBackend(Recording, RecordingAttempts))
    try:
        open_queue_store("unit-codec://?serializer=json").close()
        registry.open_attempt_store("unit-codec://?serializer=json").close()
        assert [dict(url.query) for url in seen] == [{}, {}]
        assert registry.url_serializer("unit-codec://?serializer=json").name == "json"  # type: ignore[union-attr]
        assert registry.url_serializer("unit-codec://") is None
        with pytest.raises(InvalidOptionError, match="serializer"):
            registry.open_attempt_store("unit-codec://?serializer=pickle")
        with pytest.raises(InvalidOptionError, match=r"known: max_deliveries, serializer"):
            open_queue_store("unit-codec://?serialiser=json")
    finally:
        registry._registered.pop("unit-codec", None)
        registry._loaded.pop("unit-codec", None)


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


# -- stores that must exist, and schemes without "//" -------------------------


@pytest.mark.parametrize("scheme", ["sqlite", "lmdb"])
def test_create_false_refuses_a_missing_path_and_creates_nothing(
    tmp_path: Path, scheme: str
) -> None:
    missing = tmp_path / "typo" / "jobs"
    url = f"{scheme}:///{missing}"
    for opener in (registry.open_queue_store, registry.open_attempt_store):
        with pytest.raises(StoreNotFoundError) as caught:
            opener(url, create=False)
        assert caught.value.path == str(missing)
        assert str(missing) in str(caught.value)
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize("scheme", ["sqlite", "lmdb"])
def test_create_false_opens_an_existing_store(tmp_path: Path, scheme: str) -> None:
    url = f"{scheme}:///{tmp_path / 'jobs'}"
    with localqueue.PersistentQueue("q", url) as queue:
        queue.put(1)
    store = registry.open_queue_store(url, create=False)
    try:
        assert store.stats("q").ready == 1
    finally:
        store.close()


def test_create_false_leaves_non_path_stores_alone() -> None:
    registry.open_queue_store("memory://", create=False).close()


@pytest.mark.parametrize(
    ("url", "suggestion"),
    [
        ("lmdb:jobs", "lmdb:///jobs"),
        ("sqlite:jobs.db", "sqlite:///jobs.db"),
        ("sqlite:/var/lib/jobs.db", "sqlite:////var/lib/jobs.db"),
        ("memory:", "memory://"),
        ("memory:?serializer=json", "memory://?serializer=json"),
        ("redis:localhost:6379/0", "redis://localhost:6379/0"),
        ("postgresql:app:s3cret@db/app", "postgresql://app:***@db/app"),
    ],
)
def test_a_scheme_without_slashes_is_refused_with_the_right_spelling(
    url: str, suggestion: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        StoreURL.parse(url)
    message = str(caught.value)
    assert f"did you mean {suggestion!r}" in message
    assert "s3cret" not in message
    StoreURL.parse(suggestion.replace("***", "pw"))


def test_paths_without_a_scheme_prefix_stay_sqlite_paths() -> None:
    assert StoreURL.parse("./odd:name.db").path == "./odd:name.db"
    assert StoreURL.parse("C:/jobs.db").path == "C:/jobs.db"  # one letter: a drive, not a scheme
    assert StoreURL.parse(Path("lmdb:jobs")).path == "lmdb:jobs"


# Every store URL the user-facing pages give, and what their text says it names.
DOCUMENTED_URLS: dict[str, tuple[str, str | None, str]] = {
    # url: (scheme, host, path)
    "memory://": ("memory", None, ""),
    "memory://?serializer=json": ("memory", None, ""),
    "memory://?serialiser=json": ("memory", None, ""),
    "sqlite:///jobs.db": ("sqlite", None, "jobs.db"),
    "sqlite:///file.db": ("sqlite", None, "file.db"),
    "sqlite:///data/jobs.db": ("sqlite", None, "data/jobs.db"),
    "sqlite:///PATH": ("sqlite", None, "PATH"),
    "sqlite:///relative.db": ("sqlite", None, "relative.db"),
    "sqlite:////absolute/path.db": ("sqlite", None, "/absolute/path.db"),
    "sqlite:///no-such-dir/jobs.db": ("sqlite", None, "no-such-dir/jobs.db"),
    "sqlite:////var/lib/jobs.db": ("sqlite", None, "/var/lib/jobs.db"),
    "sqlite:////var/lib/app/jobs.db": ("sqlite", None, "/var/lib/app/jobs.db"),
    "sqlite:///jobs.db?serializer=json&durability=normal": ("sqlite", None, "jobs.db"),
    "lmdb:///dir": ("lmdb", None, "dir"),
    "lmdb:///jobs": ("lmdb", None, "jobs"),
    "lmdb:///queue-dir": ("lmdb", None, "queue-dir"),
    "lmdb:////var/lib/jobs": ("lmdb", None, "/var/lib/jobs"),
    "lmdb:////var/lib/app/jobs": ("lmdb", None, "/var/lib/app/jobs"),
    "postgresql://user:pass@host/db": ("postgresql", "host", "db"),
    "postgresql://app@db.internal:5432/app": ("postgresql", "db.internal", "app"),
    "postgresql://user@host:5432/db?schema=jobs": ("postgresql", "host", "db"),
    "postgresql://app:s3cret@db.internal/app?schema=jobs": ("postgresql", "db.internal", "app"),
    "postgresql://app:***@db.internal/app?schema=jobs": ("postgresql", "db.internal", "app"),
    "redis://localhost:6379/0": ("redis", "localhost", "0"),
    "redis://host:6379/0?prefix=jobs": ("redis", "host", "0"),
}
_DOC_PAGES = ("README.md", "docs/urls.md", "docs/cli.md")
_URL_IN_TEXT = r"\b(?:sqlite|lmdb|memory|postgresql|postgres|redis|rediss)://[^\s`'\")|]*"


def _documented_urls() -> set[str]:
    root = Path(__file__).resolve().parent.parent
    found: set[str] = set()
    for page in _DOC_PAGES:
        found.update(re.findall(_URL_IN_TEXT, (root / page).read_text(encoding="utf-8")))
    return found


def test_every_documented_url_is_in_the_table() -> None:
    assert _documented_urls() - set(DOCUMENTED_URLS) == set()


@pytest.mark.parametrize("url", sorted(DOCUMENTED_URLS))
def test_documented_urls_name_what_their_text_says(url: str) -> None:
    scheme, host, path = DOCUMENTED_URLS[url]
    parsed = StoreURL.parse(url)
    assert (parsed.scheme, parsed.host, parsed.path) == (scheme, host, path)


def test_documented_path_table_matches_absolute_and_relative() -> None:
    root = Path(__file__).resolve().parent.parent
    text = (root / "docs" / "urls.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z]+://[^`]*)` \| (.*) \|$", text, re.MULTILINE)
    assert len(rows) >= 4
    for url, meaning in rows:
        parsed = StoreURL.parse(url)
        named = re.search(r"`([^`]+)`", meaning)
        assert named is not None, meaning
        assert parsed.path == named.group(1), url
        assert ("absolute" in meaning) == os.path.isabs(parsed.path), url
        assert ("relative" in meaning) == (not os.path.isabs(parsed.path)), url
