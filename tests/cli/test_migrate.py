"""``localqueue migrate PATH`` on copies of real localqueue 0.2.0 files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from localqueue.cli import exit_codes

from .conftest import invoke, lines, one

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "legacy_0_2_0"


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    target = tmp_path / "legacy"
    shutil.copytree(FIXTURES, target, ignore=shutil.ignore_patterns("README.md"))
    return target


def test_a_0_2_0_queue_file_is_refused_with_the_migrate_command(legacy: Path) -> None:
    path = legacy / "queue.sqlite"
    result = invoke(["queue", "stats", "emails", "--store-path", str(path)])
    assert result.exit_code == exit_codes.STORE_ERROR
    assert f"run `localqueue migrate {path}`" in result.stderr
    assert result.stdout == ""


def test_migrate_converts_the_queue_file_and_reports_counts(legacy: Path) -> None:
    path = legacy / "queue.sqlite"
    result = invoke(["migrate", str(path)])
    assert result.exit_code == exit_codes.SUCCESS, result.stderr
    assert lines(result) == [
        {"queue": "emails", "ready": 7, "delayed": 1, "inflight": 1, "dead": 1},
        {"queue": "reports", "ready": 2, "delayed": 0, "inflight": 0, "dead": 0},
        {
            "path": str(path),
            "migrated": True,
            "backup": f"{path}.bak-0.2.0",
            "messages": 12,
            "retry_records": 0,
            "exhausted": 0,
        },
    ]
    assert Path(f"{path}.bak-0.2.0").is_file()
    stats = one(invoke(["queue", "stats", "emails", "--store-path", str(path)]))
    assert (stats["ready"], stats["delayed"], stats["dead"], stats["total"]) == (8, 1, 1, 10)


def test_migrate_converts_the_retry_file(legacy: Path) -> None:
    path = legacy / "retries.sqlite"
    summary = one(invoke(["migrate", str(path)]))
    assert (summary["migrated"], summary["retry_records"], summary["exhausted"]) == (True, 3, 1)


def test_a_second_migrate_says_there_is_nothing_to_migrate(legacy: Path) -> None:
    path = legacy / "queue.sqlite"
    assert invoke(["migrate", str(path)]).exit_code == exit_codes.SUCCESS
    summary = one(invoke(["migrate", str(path)]))
    assert summary["migrated"] is False
    assert summary["backup"] is None
    assert "nothing to migrate" in summary["detail"]


def test_migrate_refuses_when_the_backup_exists(legacy: Path) -> None:
    path = legacy / "queue.sqlite"
    Path(f"{path}.bak-0.2.0").write_text("keep me")
    result = invoke(["migrate", str(path)])
    assert result.exit_code == exit_codes.STORE_ERROR
    assert "already exists" in result.stderr
    assert Path(f"{path}.bak-0.2.0").read_text() == "keep me"
    # Still refused by the stores: nothing was converted.
    refused = invoke(["queue", "stats", "emails", "--store-path", str(path)])
    assert "localqueue migrate" in refused.stderr


def test_migrate_of_a_missing_file_fails(tmp_path: Path) -> None:
    result = invoke(["migrate", str(tmp_path / "nope.sqlite")])
    assert result.exit_code == exit_codes.STORE_ERROR
    assert "no store file" in result.stderr
