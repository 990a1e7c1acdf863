"""A typo never reads as an empty queue: missing stores and misspelt URLs are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from localqueue import PersistentQueue
from localqueue.cli import exit_codes

from .conftest import HERE, invoke, lines, one


@pytest.fixture(autouse=True)
def _handlers_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))


# Commands that only read or change existing messages, with their arguments.
NEEDS_A_STORE = [
    ["queue", "stats", "emails"],
    ["queue", "size", "emails"],
    ["queue", "dead", "emails"],
    ["queue", "inspect", "emails", "0" * 32],
    ["queue", "peek", "emails"],
    ["queue", "pop", "emails"],
    ["queue", "ack", "emails", "0" * 32],
    ["queue", "release", "emails", "0" * 32],
    ["queue", "dead-letter", "emails", "0" * 32],
    ["queue", "requeue-dead", "emails", "--all"],
    ["queue", "purge", "emails"],
    ["queue", "process", "emails", "cli_handlers:send_email"],
    ["queue", "exec", "emails", "--", "true"],
    ["queues"],
    ["check"],
]


@pytest.fixture(params=["sqlite", "lmdb"])
def missing_url(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    path = tmp_path / "typo" / "jobs.db"
    return f"{request.param}:///{path}", path


@pytest.mark.parametrize("command", NEEDS_A_STORE, ids=lambda c: " ".join(c[:2]))
def test_a_missing_store_is_exit_7_naming_the_path(
    command: list[str], missing_url: tuple[str, Path]
) -> None:
    url, path = missing_url
    result = invoke([*command[:3], "--store", url, *command[3:]])
    assert result.exit_code == exit_codes.STORE_NOT_FOUND, result.stderr
    assert result.stdout == ""
    assert str(path) in result.stderr
    assert not path.parent.exists(), "a read-only command created the store"


def test_the_default_store_is_not_created_by_reading(isolated: Path) -> None:
    result = invoke(["queue", "stats", "emails"])
    assert result.exit_code == exit_codes.STORE_NOT_FOUND
    assert "localqueue_queue.sqlite3" in result.stderr
    assert not list(isolated.glob("localqueue_*"))


def test_add_creates_the_store(missing_url: tuple[str, Path]) -> None:
    url, path = missing_url
    path.parent.mkdir()
    one(invoke(["queue", "add", "emails", "--value", "1", "--store", url]))
    assert one(invoke(["queue", "stats", "emails", "--store", url]))["ready"] == 1


def test_add_with_a_bad_value_creates_no_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    assert invoke(["queue", "add", "emails", "--value", "{", "--store", url]).exit_code == 2
    assert not (tmp_path / "jobs.db").exists()


def test_a_worker_creates_the_store_only_with_create(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    retries = ["--retry-store", f"sqlite:///{tmp_path / 'retries.db'}"]
    args = ["queue", "process", "emails", "cli_handlers:send_email", "--store", url, *retries]
    assert invoke(args).exit_code == exit_codes.STORE_NOT_FOUND
    assert not (tmp_path / "jobs.db").exists()
    created = invoke([*args, "--create", "--until-empty"])
    assert created.exit_code == 0, created.stderr
    assert lines(created)[-1]["processed"] == 0
    assert (tmp_path / "jobs.db").exists()


@pytest.mark.parametrize(
    ("url", "suggestion"),
    [
        ("lmdb:jobs", "lmdb:///jobs"),
        ("sqlite:jobs.db", "sqlite:///jobs.db"),
        ("memory:", "memory://"),
    ],
)
def test_a_scheme_without_slashes_is_refused_with_the_fix(
    url: str, suggestion: str, isolated: Path
) -> None:
    for command in (["queue", "add", "emails", "--value", "1"], ["queue", "stats", "emails"]):
        result = invoke([*command, "--store", url])
        assert result.exit_code == exit_codes.USAGE_ERROR
        assert suggestion in result.stderr
    assert sorted(p.name for p in isolated.iterdir()) == [], "something was created"


def test_store_path_is_always_a_file_path(isolated: Path) -> None:
    one(invoke(["queue", "add", "emails", "--value", "1", "--store-path", "odd:name.db"]))
    assert (isolated / "odd:name.db").exists()
    with PersistentQueue("emails", "./odd:name.db") as queue:
        assert queue.qsize() == 1


def test_an_empty_store_path_is_refused() -> None:
    result = invoke(["queue", "add", "emails", "--value", "1", "--store-path", ""])
    assert result.exit_code == exit_codes.USAGE_ERROR
    assert "must not be empty" in result.stderr
