"""The ``localqueue`` Typer application: command groups and error reporting.

Every failure ends in :meth:`_ReportingGroup.invoke`: one line on stderr and
the matching status from :mod:`localqueue.cli.exit_codes`; the traceback is
only shown with ``--debug`` (or ``LOCALQUEUE_DEBUG=1``).
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from localqueue._version import __version__
from localqueue.cli.commands.config_cmd import config_app
from localqueue.cli.commands.queue_cmd import queue_app
from localqueue.cli.commands.queues_cmd import queues
from localqueue.cli.commands.work_cmd import register as register_work_commands
from localqueue.cli.errors import exit_code_for, redact_secrets

__all__ = ["app"]

_DEBUG = "localqueue.debug"


def _is_framework_exception(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("typer", "click")


class _ReportingGroup(TyperGroup):
    """The root group: turns exceptions into one stderr line and an exit status."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            # Usage errors, Exit and Abort belong to Typer/Click, which report them itself.
            if _is_framework_exception(exc) or ctx.meta.get(_DEBUG):
                raise
            code = exit_code_for(exc)
            # Engine messages may span lines (psycopg's hints do); the report stays one line.
            text = " ".join((str(exc) or type(exc).__name__).split())
            if code == 1:
                text = f"unexpected {type(exc).__name__}: {text} (rerun with --debug for details)"
            print(f"localqueue: error: {redact_secrets(text)}", file=sys.stderr)
            raise typer.Exit(code) from None


app = typer.Typer(
    name="localqueue",
    cls=_ReportingGroup,
    help="Durable local job queues: add, inspect, lease and process messages.",
    no_args_is_help=True,
    add_completion=False,
    # Locals may hold store URLs with passwords; never print them.
    pretty_exceptions_show_locals=False,
)


def _print_version(value: bool) -> None:
    if value:
        print(f"localqueue {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", envvar="LOCALQUEUE_DEBUG", help="Show tracebacks instead of one-line errors."
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Durable local job queues: add, inspect, lease and process messages."""
    ctx.meta[_DEBUG] = debug


register_work_commands(queue_app)
app.add_typer(config_app, name="config")
app.add_typer(queue_app, name="queue")
app.command("queues")(queues)
