"""What ``process`` and ``exec`` run for each message.

``process`` imports a ``module:function`` handler; ``exec`` wraps an external
command in a handler that writes the value to its stdin as JSON and treats a
non-zero exit as a failure.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

from localqueue.cli.errors import CliError

__all__ = ["CommandFailedError", "CommandHandler", "import_handler"]

OUTPUT_LIMIT = 2000
"""Most characters of a failed command's stdout and of its stderr kept in ``last_error``."""


def import_handler(spec: str) -> Callable[..., Any]:
    """Import the callable named by ``module:function`` (``function`` may be dotted).

    The current directory is importable, as when running ``python -m``, so a
    handler module next to the user's working directory is found.

    Raises:
        CliError: The spec is malformed, the import fails, or the target is not callable.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise CliError(f"handler {spec!r} must look like module:function")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise CliError(f"cannot import handler module {module_name!r}: {exc}") from exc
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise CliError(f"{module_name!r} has no attribute {attribute!r}") from None
    if not callable(target):
        raise CliError(f"handler {spec!r} is not callable")
    return target  # type: ignore[no-any-return]


def _tail(text: str) -> str:
    text = text.strip()
    if len(text) <= OUTPUT_LIMIT:
        return text
    return "[...] " + text[-OUTPUT_LIMIT:]


class CommandFailedError(Exception):
    """Raised by :class:`CommandHandler` when the command exits with a non-zero status.

    Its text, recorded as the message's ``last_error``, names the command, the
    exit status, and the end of its stdout and stderr.

    Attributes:
        command: The command line.
        returncode: Its exit status (negative: killed by that signal).
    """

    def __init__(self, command: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        self.command = list(command)
        self.returncode = returncode
        parts = [f"command {subprocess.list2cmdline(self.command)} exited with {returncode}"]
        if stdout.strip():
            parts.append(f"stdout: {_tail(stdout)}")
        if stderr.strip():
            parts.append(f"stderr: {_tail(stderr)}")
        super().__init__("; ".join(parts))


class CommandHandler:
    """A handler that runs an external command per message.

    The value is written to the command's stdin as JSON; its output is
    captured so the CLI's own JSON status lines stay clean.

    Args:
        command: The program and its arguments.
    """

    def __init__(self, command: Sequence[str]) -> None:
        if not command:
            raise CliError("exec needs a command after '--'")
        if shutil.which(command[0]) is None:
            raise CliError(f"command not found or not executable: {command[0]!r}")
        self.command = list(command)

    def __repr__(self) -> str:
        return f"CommandHandler({self.command!r})"

    def __call__(self, value: Any) -> None:
        """Run the command once with ``value`` on stdin.

        Raises:
            CommandFailedError: The command exited with a non-zero status.
            OSError: The command could not be started.
        """
        done = subprocess.run(
            self.command,
            input=json.dumps(value, ensure_ascii=False),
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
            # The worker catches SIGINT/SIGTERM to stop cleanly; the command's own
            # process group keeps a Ctrl-C from killing the message mid-run.
            start_new_session=True,
        )
        if done.returncode != 0:
            raise CommandFailedError(self.command, done.returncode, done.stdout, done.stderr)
