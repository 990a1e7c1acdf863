"""The ``localqueue`` command line (needs the ``cli`` extra: typer, rich, PyYAML).

Importing this package needs no extra; :func:`main` checks for them and
prints the install command when they are missing.
"""

from __future__ import annotations

import sys

from localqueue._install import extra_hint
from localqueue.cli.exit_codes import USAGE_ERROR

__all__ = ["main"]

INSTALL_HINT = extra_hint("cli")


def _missing_extra() -> str | None:
    """The name of the first missing CLI dependency, or ``None``."""
    for module in ("typer", "rich", "yaml"):
        try:
            __import__(module)
        except ImportError:
            return module
    return None


def main(argv: list[str] | None = None) -> None:
    """Run the ``localqueue`` command line and exit with its status.

    Args:
        argv: The arguments after the program name; defaults to ``sys.argv[1:]``.
    """
    missing = _missing_extra()
    if missing is not None:
        print(
            f"localqueue: the command line needs the 'cli' extra ({missing} is missing); "
            f"install it with: {INSTALL_HINT}",
            file=sys.stderr,
        )
        raise SystemExit(USAGE_ERROR)
    from localqueue.cli.app import app

    app(args=argv, prog_name="localqueue")
