"""``localqueue config init|show|set|path`` and how settings pick the store."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from localqueue.cli import exit_codes

from .conftest import invoke, lines, one


def settings_file(root: Path) -> Path:
    return root / "xdg" / "localqueue" / "config.yaml"


def test_path_follows_xdg_config_home(isolated: Path) -> None:
    shown = one(invoke(["config", "path"]))
    assert shown == {"path": str(settings_file(isolated)), "exists": False}


def test_path_defaults_to_dot_config_in_home(isolated: Path, monkeypatch) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(isolated / "home"))
    shown = one(invoke(["config", "path"]))
    assert shown["path"] == str(isolated / "home" / ".config" / "localqueue" / "config.yaml")


def test_init_writes_the_seed_keys_as_yaml(isolated: Path) -> None:
    shown = one(invoke(["config", "init", "--store-path", "./localqueue_queue.sqlite3"]))
    assert shown["store_path"] == "./localqueue_queue.sqlite3"
    written = yaml.safe_load(settings_file(isolated).read_text())
    assert written == {"store_path": "./localqueue_queue.sqlite3"}
    assert settings_file(isolated).stat().st_mode & 0o077 == 0


def test_init_refuses_to_overwrite_without_force(isolated: Path) -> None:
    invoke(["config", "init", "--store", "sqlite:///a.db"])
    again = invoke(["config", "init", "--store", "sqlite:///b.db"])
    assert again.exit_code == exit_codes.USAGE_ERROR
    assert "--force" in again.stderr
    forced = one(invoke(["config", "init", "--store", "sqlite:///b.db", "--force"]))
    assert forced["store"] == "sqlite:///b.db"


def test_set_then_show(isolated: Path) -> None:
    invoke(["config", "init", "--store-path", "./q.sqlite3"])
    one(invoke(["config", "set", "retry_store_path", "./localqueue_retries.sqlite3"]))
    shown = one(invoke(["config", "show"]))
    assert shown == {
        "path": str(settings_file(isolated)),
        "store_path": "./q.sqlite3",
        "retry_store_path": "./localqueue_retries.sqlite3",
    }


def test_setting_one_spelling_replaces_the_other(isolated: Path) -> None:
    invoke(["config", "init", "--store-path", "./q.sqlite3"])
    shown = one(invoke(["config", "set", "store", "sqlite:///other.db"]))
    assert shown["store"] == "sqlite:///other.db"
    assert "store_path" not in shown


def test_set_unknown_key_is_a_usage_error(isolated: Path) -> None:
    result = invoke(["config", "set", "stroe", "x"])
    assert result.exit_code == exit_codes.USAGE_ERROR
    assert "unknown setting 'stroe'" in result.stderr
    assert not settings_file(isolated).exists()


def test_show_masks_passwords(isolated: Path) -> None:
    invoke(["config", "init", "--store", "postgresql://app:s3cret@db/jobs"])
    for fmt in ("json", "table"):
        result = invoke(["config", "show", "--format", fmt])
        assert result.exit_code == 0
        assert "s3cret" not in result.stdout
        assert "***" in result.stdout


def test_malformed_settings_file_is_one_clear_error(isolated: Path) -> None:
    settings_file(isolated).parent.mkdir(parents=True)
    settings_file(isolated).write_text("store: [unclosed\n")
    result = invoke(["queue", "size", "emails"])
    assert result.exit_code == exit_codes.USAGE_ERROR
    assert "not valid YAML" in result.stderr
    assert "Traceback" not in result.stderr


def test_commands_use_the_configured_store(isolated: Path, store_url: str) -> None:
    invoke(["config", "init", "--store", store_url])
    one(invoke(["queue", "add", "emails", "--value", '{"to": "a@example.com"}']))
    assert one(invoke(["queue", "size", "emails"]))["size"] == 1
    assert one(invoke(["queue", "size", "emails", "--store", store_url]))["size"] == 1


def test_flag_beats_the_settings_file(isolated: Path, store_url: str) -> None:
    invoke(["config", "init", "--store", "sqlite:///elsewhere.db"])
    one(invoke(["queue", "add", "emails", "--value", "1", "--store", store_url]))
    assert one(invoke(["queue", "size", "emails", "--store", store_url]))["size"] == 1
    assert lines(invoke(["queues", "--store", store_url]))[0]["queue"] == "emails"


def test_store_and_store_path_together_is_a_usage_error(isolated: Path) -> None:
    result = invoke(["queue", "size", "q", "--store", "memory://", "--store-path", "x.db"])
    assert result.exit_code == exit_codes.USAGE_ERROR
    assert "either --store or --store-path" in result.stderr


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("store", "sqlite://bad.db", "take no host"),
        ("store", "lmdb:jobs", "lmdb:///jobs"),
        ("store", "sqlit:///x.db", "Did you mean 'sqlite'"),
        ("store", "sqlite:///x.db?durabilty=full", "durabilty"),
        ("store_path", "", "must not be empty"),
        ("retry_store", "lmdb:///r?map_size=abc", "map_size"),
    ],
)
def test_set_refuses_a_value_the_commands_could_not_use(
    isolated: Path, key: str, value: str, says: str
) -> None:
    result = invoke(["config", "set", key, value])
    assert result.exit_code == exit_codes.USAGE_ERROR
    assert says in result.stderr
    assert f"invalid {key}" in result.stderr
    assert not settings_file(isolated).exists()
    assert [p.name for p in isolated.iterdir() if p.name != "xdg"] == []


def test_init_refuses_a_bad_store_too(isolated: Path) -> None:
    result = invoke(["config", "init", "--store", "sqlite://bad.db"])
    assert result.exit_code == exit_codes.USAGE_ERROR
    assert not settings_file(isolated).exists()


def test_set_accepts_a_store_that_does_not_exist_yet_and_creates_nothing(isolated: Path) -> None:
    shown = one(invoke(["config", "set", "store", "lmdb:///new-dir?map_size=1048576"]))
    assert shown["store"] == "lmdb:///new-dir?map_size=1048576"
    assert not (isolated / "new-dir").exists()


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("store: sqlite://bad.db", "take no host"),
        ("store: lmdb:jobs", "lmdb:///jobs"),
        ("store_path: ''", "must not be empty"),
        ("stroe: x.db", "unknown setting 'stroe'"),
    ],
)
def test_errors_from_the_settings_file_name_it(isolated: Path, line: str, says: str) -> None:
    path = settings_file(isolated)
    path.parent.mkdir(parents=True)
    path.write_text(line + "\n")
    result = invoke(["queue", "stats", "emails"])
    assert result.exit_code == exit_codes.USAGE_ERROR
    assert str(path) in result.stderr
    assert says in result.stderr


def test_a_missing_store_from_the_settings_file_names_the_file(isolated: Path) -> None:
    invoke(["config", "set", "store", "sqlite:///typo.db"])
    result = invoke(["queue", "stats", "emails"])
    assert result.exit_code == exit_codes.STORE_NOT_FOUND
    assert "typo.db" in result.stderr
    assert str(settings_file(isolated)) in result.stderr
