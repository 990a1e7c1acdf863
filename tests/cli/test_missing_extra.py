"""Without the ``cli`` extra the command says what to install and exits 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from localqueue.cli import exit_codes

from .conftest import child_env

BLOCK_AND_RUN = """
import sys
sys.modules[{module!r}] = None  # makes `import {module}` raise ImportError
sys.argv = ["localqueue", "queue", "size", "emails"]
from localqueue.cli import main
main()
"""


@pytest.mark.parametrize("module", ["typer", "rich", "yaml"])
def test_missing_dependency_prints_the_install_command_and_exits_2(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_AND_RUN.format(module=module)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
        check=False,
    )
    assert result.returncode == exit_codes.USAGE_ERROR
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert "pip install 'durable-localqueue[cli]'" in line
    assert "pip install '.[cli]'" in line
    assert module in line


def test_package_imports_without_the_extra() -> None:
    code = "import sys; sys.modules['typer'] = None; import localqueue.cli, localqueue.cli.__main__"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
