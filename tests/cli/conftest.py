"""Fixtures for the command-line tests: an isolated settings folder and store URLs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from localqueue.cli.app import app
from localqueue.registry import open_queue_store

HERE = Path(__file__).parent
REPO = HERE.parent.parent

# scheme -> (queue store URL, attempt store URL) inside the test's temp dir
_URLS = {
    "sqlite": ("sqlite:///{tmp}/queue.sqlite3", "sqlite:///{tmp}/retries.sqlite3"),
    "lmdb": ("lmdb:///{tmp}/queue-lmdb", "lmdb:///{tmp}/retries-lmdb"),
}


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run every test in its own folder with its own settings file location."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("LOCALQUEUE_DEBUG", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(params=sorted(_URLS))
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A queue store URL of each persistent engine.

    Both engines come with the dev extra; a missing one fails the test rather
    than skipping it, so a broken install cannot pass CI unnoticed.
    """
    scheme: str = request.param
    return _URLS[scheme][0].format(tmp=tmp_path)


@pytest.fixture
def retry_url(tmp_path: Path, store_url: str) -> str:
    """An attempt store URL of the same engine as ``store_url``."""
    scheme = store_url.split(":", 1)[0]
    return _URLS[scheme][1].format(tmp=tmp_path)


def create_store(url: str) -> str:
    """Create an empty store at ``url`` (commands other than ``add`` need one to exist)."""
    open_queue_store(url).close()
    return url


def invoke(args: Sequence[str], *, input: str | None = None) -> Result:
    """Run ``localqueue ARGS`` in this process through Typer's runner."""
    return CliRunner().invoke(app, list(args), input=input, catch_exceptions=False)


def lines(result: Result) -> list[dict[str, Any]]:
    """The JSON objects printed on stdout, one per line."""
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def one(result: Result) -> dict[str, Any]:
    """The single JSON object a successful command printed."""
    assert result.exit_code == 0, result.stderr
    (only,) = lines(result)
    return only


def run_cli(
    args: Sequence[str],
    *,
    input: str | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m localqueue.cli ARGS`` in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "localqueue.cli", *args],
        input=input,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=child_env(env),
        timeout=timeout,
        check=False,
    )


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child CLI: this checkout first on the path, plus ``extra``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), str(HERE), env.get("PYTHONPATH", "")) if p
    )
    env.pop("LOCALQUEUE_DEBUG", None)
    env.update(extra or {})
    return env
